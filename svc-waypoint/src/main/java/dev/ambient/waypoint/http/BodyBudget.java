package dev.ambient.waypoint.http;

import java.util.concurrent.atomic.AtomicLong;

/**
 * The bytes of request bodies the waypoint holds at once for retries (also used, as a budget of
 * its own, for the bodies held for ext_authz checks: {@link HeldBodies}), across all connections,
 * bounded by waypoint.http.max-buffered-body-bytes. Bodies stream through the waypoint; a copy is
 * held only while a retry may need it ({@link RetryBuffer}), each up to retry-buffer-bytes, so N
 * slow uploaders would otherwise make it hold N times that. When the budget is spent a request is
 * not refused: it streams on and is not retried.
 */
public final class BodyBudget {

    private final long max;
    private final AtomicLong held = new AtomicLong();

    public BodyBudget(long max) {
        this(max, "waypoint.http.max-buffered-body-bytes");
    }

    /** @param key the configuration key that sets {@code max}, for the error */
    BodyBudget(long max, String key) {
        if (max <= 0) {
            throw new IllegalArgumentException(key + " must be positive: " + max);
        }
        this.max = max;
    }

    /** Takes {@code bytes} from the budget, or takes nothing and says false. */
    boolean tryReserve(long bytes) {
        long now;
        do {
            now = held.get();
            if (now + bytes > max) {
                return false;
            }
        } while (!held.compareAndSet(now, now + bytes));
        return true;
    }

    void release(long bytes) {
        held.addAndGet(-bytes);
    }

    /** Bytes held now (the gauge waypoint_buffered_body_bytes). */
    public long held() {
        return held.get();
    }

    public long max() {
        return max;
    }
}
