package dev.ambient.ca.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.ca.Refusal;
import dev.ambient.ca.Refusal.Reason;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import io.quarkus.test.junit.QuarkusTest;
import org.junit.jupiter.api.Test;

/**
 * What the TokenReview cache remembers, for how long, and what it never remembers. A
 * {@code @QuarkusTest} only so that it runs in Quarkus's class loader like the other tests: a
 * plain test loading the shared classes in the application class loader breaks the gRPC server
 * of a later restarted test application (ClassCastException on the generated service bean).
 */
@QuarkusTest
class CachingAuthenticatorTest {

    static final Caller SLEEP = new Caller("default", "sleep", null, null);

    @Test
    void concurrentRequestsWithOneTokenShareOneReview() throws Exception {
        AtomicInteger reviews = new AtomicInteger();
        CountDownLatch release = new CountDownLatch(1);
        var cache = new CachingAuthenticator(token -> {
            reviews.incrementAndGet();
            await(release);
            return SLEEP;
        }, Duration.ofSeconds(30), 100);
        try (var pool = Executors.newFixedThreadPool(8)) {
            List<Future<Caller>> answers = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                answers.add(pool.submit(() -> cache.authenticate("t")));
            }
            Thread.sleep(200);
            release.countDown();
            for (Future<Caller> answer : answers) {
                assertSame(SLEEP, answer.get());
            }
        }
        assertEquals(1, reviews.get());
    }

    @Test
    void rejectedTokensAreRememberedButOutagesAreNot() {
        AtomicInteger reviews = new AtomicInteger();
        var cache = new CachingAuthenticator(token -> {
            reviews.incrementAndGet();
            throw new Refusal(token.equals("bad") ? Reason.UNAUTHENTICATED : Reason.KUBERNETES_UNAVAILABLE, token);
        }, Duration.ofSeconds(30), 100);
        assertThrows(Refusal.class, () -> cache.authenticate("bad"));
        assertThrows(Refusal.class, () -> cache.authenticate("bad"));
        assertEquals(1, reviews.get());
        assertThrows(Refusal.class, () -> cache.authenticate("outage"));
        assertThrows(Refusal.class, () -> cache.authenticate("outage"));
        assertEquals(3, reviews.get(), "an outage is asked again, not remembered");
    }

    @Test
    void answersExpireAndTheCacheStaysBounded() throws Exception {
        AtomicInteger reviews = new AtomicInteger();
        var cache = new CachingAuthenticator(token -> {
            reviews.incrementAndGet();
            return SLEEP;
        }, Duration.ofMillis(100), 10);
        cache.authenticate("t");
        Thread.sleep(150);
        cache.authenticate("t");
        assertEquals(2, reviews.get());
        for (int i = 0; i < 100; i++) {
            cache.authenticate("token-" + i);
        }
        assertTrue(cache.size() <= 11, "size " + cache.size());
    }

    private static void await(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
