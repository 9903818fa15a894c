package dev.ambient.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.auth.AuthenticationFailure.Kind;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Token checks in flight are bounded in all and per address; over the bound is refused at once. */
class ConcurrencyLimitTest {

    static final Caller SLEEP = new Caller("default", "sleep", null, null);

    @Test
    void oneAddressCannotTakeEverySlotAndNothingQueues() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger inFlight = new AtomicInteger();
        AtomicInteger most = new AtomicInteger();
        var limit = new ConcurrencyLimit((token, peer) -> {
            most.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
            try {
                if (!token.equals("quick")) {
                    release.await();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                inFlight.decrementAndGet();
            }
            return SLEEP;
        }, 4, 2);
        try (var pool = Executors.newFixedThreadPool(50)) {
            List<Future<Caller>> flood = new ArrayList<>();
            for (int i = 0; i < 50; i++) {
                String token = "bogus-" + i;
                flood.add(pool.submit(() -> limit.authenticate(token, "10.0.0.66")));
            }
            long refused = 0;
            long start = System.nanoTime();
            for (Future<Caller> f : flood.subList(0, 50)) {
                try {
                    f.get(50, TimeUnit.MILLISECONDS);
                } catch (ExecutionException e) {
                    AuthenticationFailure failure = (AuthenticationFailure) e.getCause();
                    assertEquals(Kind.BUSY, failure.kind());
                    assertTrue(failure.getMessage().contains("10.0.0.66"), failure.getMessage());
                    refused++;
                } catch (java.util.concurrent.TimeoutException stillChecking) {
                    // one of the two admitted
                }
            }
            assertEquals(48, refused, "all but two of one address's checks are refused, at once");
            assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(10));
            assertSame(SLEEP, limit.authenticate("quick", "10.0.0.7"), "another address still gets a slot");
            release.countDown();
        }
        assertTrue(most.get() <= 3, "at most 2 from the flood plus the other caller: " + most.get());
        assertEquals(0, limit.peersInFlight(), "per-address counts are released");
    }

    @Test
    void theGlobalBoundHoldsAcrossAddresses() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        var limit = new ConcurrencyLimit((token, peer) -> {
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return SLEEP;
        }, 3, 2);
        try (var pool = Executors.newFixedThreadPool(3)) {
            for (int i = 0; i < 3; i++) {
                String peer = "10.0.0." + i;
                pool.submit(() -> limit.authenticate("t", peer));
            }
            Thread.sleep(200);
            AuthenticationFailure full = assertThrows(AuthenticationFailure.class, () -> limit.authenticate("t", "10.0.0.9"));
            assertEquals(Kind.BUSY, full.kind());
            release.countDown();
        }
        assertSame(SLEEP, limit.authenticate("t", "10.0.0.9"));
    }
}
