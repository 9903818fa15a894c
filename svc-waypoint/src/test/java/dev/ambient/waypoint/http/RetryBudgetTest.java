package dev.ambient.waypoint.http;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Retries stay within a share of the requests in flight, with a small floor. */
class RetryBudgetTest {

    @Test
    void retriesAreBoundedByTheBudgetAndTheFloor() {
        RetryBudget b = new RetryBudget(3);
        for (int i = 0; i < 100; i++) {
            b.requestStarted();
        }
        // 20% of 100 requests in flight: 20 concurrent retries, not one more.
        for (int i = 0; i < 20; i++) {
            assertTrue(b.tryRetry(20), "retry " + i);
        }
        assertFalse(b.tryRetry(20));
        b.retryEnded();
        assertTrue(b.tryRetry(20), "a finished retry frees its place");
    }

    @Test
    void aFewRetriesAreAlwaysAllowed() {
        RetryBudget b = new RetryBudget(3);
        b.requestStarted();
        assertTrue(b.tryRetry(20));
        assertTrue(b.tryRetry(20));
        assertTrue(b.tryRetry(20));
        assertFalse(b.tryRetry(20), "1 request in flight: only the floor of 3");
    }
}
