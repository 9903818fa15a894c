package dev.ambient.waypoint.authn;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * How many tokens of one mesh peer may fail their signature check per window. A signature costs
 * the waypoint 40 us (RS256) to 500 us (ES256, EdDSA) of CPU, and a token that fails is never
 * cached, so a peer sending bad signatures could make the waypoint spend about a core per 2,000
 * requests a second. Past its budget, a peer's tokens that are not in the verified-token cache
 * are refused without being verified until the window ends; other peers are not touched.
 *
 * <p>Fixed windows per peer (its SPIFFE id: the waypoint accepts only mesh peers, so the keys
 * are bounded by the mesh's identities); entries of past windows are dropped as the map grows.
 */
final class SignatureFailureBudget {

    /** Per peer: the window it counts in (its start, seconds) and the failures in it. */
    private static final class Window {
        final long start;
        final AtomicLong failures = new AtomicLong();

        Window(long start) {
            this.start = start;
        }
    }

    private static final int PURGE_ABOVE = 1024;

    private final int failuresPerWindow;
    private final long windowSeconds;
    private final ConcurrentHashMap<String, Window> windows = new ConcurrentHashMap<>();

    /** @param failuresPerWindow 0: no budget (every token is verified) */
    SignatureFailureBudget(int failuresPerWindow, long windowSeconds) {
        this.failuresPerWindow = failuresPerWindow;
        this.windowSeconds = Math.max(1, windowSeconds);
    }

    /** True when {@code peer} has failed its whole budget in the current window. */
    boolean spent(String peer, long nowSeconds) {
        if (failuresPerWindow == 0) {
            return false;
        }
        Window w = windows.get(peer);
        return w != null && nowSeconds < w.start + windowSeconds && w.failures.get() >= failuresPerWindow;
    }

    /** Counts one failed signature of {@code peer}. */
    void failed(String peer, long nowSeconds) {
        if (failuresPerWindow == 0) {
            return;
        }
        Window w = windows.compute(peer, (k, old) -> old == null || nowSeconds >= old.start + windowSeconds
                ? new Window(nowSeconds) : old);
        w.failures.incrementAndGet();
        if (windows.size() > PURGE_ABOVE) {
            windows.values().removeIf(x -> nowSeconds >= x.start + windowSeconds);
        }
    }
}
