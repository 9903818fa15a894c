package dev.ambient.waypoint.http;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Retries may be at most a percentage of the requests in flight (Envoy's retry budget), with a
 * floor of a few concurrent retries, so that a failing backend never sees the load multiplied.
 */
public final class RetryBudget {

    private final int minConcurrency;
    private final AtomicInteger activeRequests = new AtomicInteger();
    private final AtomicInteger activeRetries = new AtomicInteger();

    public RetryBudget(int minConcurrency) {
        this.minConcurrency = minConcurrency;
    }

    public void requestStarted() {
        activeRequests.incrementAndGet();
    }

    public void requestEnded() {
        activeRequests.decrementAndGet();
    }

    /** Takes a retry slot if the budget allows; the caller returns it with {@link #retryEnded}. */
    public boolean tryRetry(int budgetPercent) {
        for (;;) {
            int retries = activeRetries.get();
            long allowed = Math.max(minConcurrency, (long) activeRequests.get() * budgetPercent / 100);
            if (retries >= allowed) {
                return false;
            }
            if (activeRetries.compareAndSet(retries, retries + 1)) {
                return true;
            }
        }
    }

    public void retryEnded() {
        activeRetries.decrementAndGet();
    }

    public int activeRequests() {
        return activeRequests.get();
    }
}
