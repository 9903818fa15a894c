package dev.ambient.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.auth.AuthenticationFailure.Kind;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** What the token cache remembers, for how long, and what it never remembers. */
class CachingAuthenticatorTest {

    static final Caller SLEEP = new Caller("default", "sleep", null, null);

    @Test
    void concurrentRequestsWithOneTokenShareOneReview() throws Exception {
        AtomicInteger reviews = new AtomicInteger();
        CountDownLatch release = new CountDownLatch(1);
        var cache = new CachingAuthenticator((token, peer) -> {
            reviews.incrementAndGet();
            await(release);
            return SLEEP;
        }, Duration.ofSeconds(30), 100);
        try (var pool = Executors.newFixedThreadPool(8)) {
            List<Future<Caller>> answers = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                answers.add(pool.submit(() -> cache.authenticate("t", "10.0.0.1")));
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
        var cache = new CachingAuthenticator((token, peer) -> {
            reviews.incrementAndGet();
            throw new AuthenticationFailure(token.equals("bad") ? Kind.UNAUTHENTICATED : Kind.UNAVAILABLE, token);
        }, Duration.ofSeconds(30), 100);
        assertThrows(AuthenticationFailure.class, () -> cache.authenticate("bad", "p"));
        assertThrows(AuthenticationFailure.class, () -> cache.authenticate("bad", "p"));
        assertEquals(1, reviews.get());
        assertThrows(AuthenticationFailure.class, () -> cache.authenticate("outage", "p"));
        assertThrows(AuthenticationFailure.class, () -> cache.authenticate("outage", "p"));
        assertEquals(3, reviews.get(), "an outage is asked again, not remembered");
    }

    @Test
    void answersExpireAndTheCacheStaysBounded() throws Exception {
        AtomicInteger reviews = new AtomicInteger();
        var cache = new CachingAuthenticator((token, peer) -> {
            reviews.incrementAndGet();
            return SLEEP;
        }, Duration.ofMillis(100), 10);
        cache.authenticate("t", "p");
        Thread.sleep(150);
        cache.authenticate("t", "p");
        assertEquals(2, reviews.get());
        for (int i = 0; i < 100; i++) {
            cache.authenticate("token-" + i, "p");
        }
        assertTrue(cache.size() <= 10, "size " + cache.size());
    }

    @Test
    void aFloodOfBadTokensNeverPushesAValidOneOut() {
        AtomicInteger reviews = new AtomicInteger();
        var cache = new CachingAuthenticator((token, peer) -> {
            reviews.incrementAndGet();
            if (token.equals("good")) {
                return SLEEP;
            }
            throw new AuthenticationFailure(Kind.UNAUTHENTICATED, "invalid bearer token");
        }, Duration.ofSeconds(30), 10);
        cache.authenticate("good", "p");
        for (int i = 0; i < 1000; i++) {
            String bogus = "bogus-" + i;
            assertThrows(AuthenticationFailure.class, () -> cache.authenticate(bogus, "attacker"));
        }
        assertTrue(cache.rejectedSize() <= 10, "rejected entries stay bounded: " + cache.rejectedSize());
        int before = reviews.get();
        assertSame(SLEEP, cache.authenticate("good", "p"));
        assertEquals(before, reviews.get(), "the valid token is still cached after the flood");
    }

    private static void await(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
