package dev.ambient.waypoint.http;

import java.util.concurrent.atomic.AtomicLong;

/**
 * The bytes of request and response bodies the waypoint holds at once, across all connections
 * (bodies are held whole, for retries), bounded by waypoint.http.max-buffered-body-bytes: one
 * body is bounded by max-body-bytes, so N slow uploaders would otherwise hold N times that.
 */
public final class BodyBudget {

    /** A body could not be held: the budget is spent. */
    public static final class Exhausted extends RuntimeException {
        Exhausted(long max) {
            super("bodies held by the waypoint are at their limit of " + max + " bytes", null, false, false);
        }
    }

    private final long max;
    private final AtomicLong held = new AtomicLong();

    public BodyBudget(long max) {
        if (max <= 0) {
            throw new IllegalArgumentException("waypoint.http.max-buffered-body-bytes must be positive: " + max);
        }
        this.max = max;
    }

    /** Takes {@code bytes} from the budget, or throws {@link Exhausted} and takes nothing. */
    void reserve(long bytes) {
        long now;
        do {
            now = held.get();
            if (now + bytes > max) {
                throw new Exhausted(max);
            }
        } while (!held.compareAndSet(now, now + bytes));
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
