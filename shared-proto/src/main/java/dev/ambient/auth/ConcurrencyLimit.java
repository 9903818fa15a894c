package dev.ambient.auth;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Bounds the token checks in flight (TokenReviews: each holds a worker thread and costs the API
 * server), in all and per caller address. A call over either bound is refused at once as
 * {@code BUSY} (gRPC {@code UNAVAILABLE}: the caller retries with backoff) instead of queueing, so a flood of new
 * tokens holds a few threads at most, and one flooding address cannot take every slot from the
 * callers elsewhere.
 */
public final class ConcurrencyLimit implements TokenAuthenticator {

    private final TokenAuthenticator delegate;
    private final Semaphore slots;
    private final int maxPerPeer;
    private final ConcurrentHashMap<String, AtomicInteger> perPeer = new ConcurrentHashMap<>();

    public ConcurrencyLimit(TokenAuthenticator delegate, int maxConcurrent, int maxPerPeer) {
        if (maxConcurrent < 1 || maxPerPeer < 1) {
            throw new IllegalArgumentException("the bounds on concurrent token checks must be at least 1");
        }
        this.delegate = delegate;
        this.slots = new Semaphore(maxConcurrent);
        this.maxPerPeer = maxPerPeer;
    }

    @Override
    public Caller authenticate(String token, String peer) {
        String who = peer == null ? "unknown" : peer;
        if (!enter(who)) {
            throw AuthenticationFailure.busy("too many tokens from " + who + " are being checked at once; retry later");
        }
        try {
            if (!slots.tryAcquire()) {
                throw AuthenticationFailure.busy("too many tokens are being checked at once; retry later");
            }
            try {
                return delegate.authenticate(token, peer);
            } finally {
                slots.release();
            }
        } finally {
            leave(who);
        }
    }

    private boolean enter(String peer) {
        boolean[] admitted = {false};
        perPeer.compute(peer, (k, count) -> {
            AtomicInteger c = count == null ? new AtomicInteger() : count;
            if (c.get() < maxPerPeer) {
                c.incrementAndGet();
                admitted[0] = true;
            }
            return c.get() == 0 ? null : c;
        });
        return admitted[0];
    }

    private void leave(String peer) {
        perPeer.computeIfPresent(peer, (k, count) -> count.decrementAndGet() == 0 ? null : count);
    }

    /** Addresses with checks in flight (for tests: nothing leaks). */
    int peersInFlight() {
        return perPeer.size();
    }
}
