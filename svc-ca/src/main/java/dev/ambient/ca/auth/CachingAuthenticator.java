package dev.ambient.ca.auth;

import dev.ambient.ca.Refusal;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Remembers a token's answer for a short while, so that a burst of CSRs from one ztunnel (every
 * pod on its node at once, after a restart) costs one TokenReview, not one per pod. Concurrent
 * requests with the same token wait for the one review in flight. Valid and rejected tokens are
 * remembered; "could not check" (API outage) is not. Tokens are kept only as SHA-256 hashes.
 */
public final class CachingAuthenticator implements TokenAuthenticator {

    private record Entry(CompletableFuture<Caller> answer, long expiresAtNanos) {}

    private final TokenAuthenticator delegate;
    private final long ttlNanos;
    private final int maxEntries;
    private final ConcurrentHashMap<String, Entry> entries = new ConcurrentHashMap<>();

    public CachingAuthenticator(TokenAuthenticator delegate, Duration ttl, int maxEntries) {
        this.delegate = delegate;
        this.ttlNanos = ttl.toNanos();
        this.maxEntries = Math.max(1, maxEntries);
    }

    @Override
    public Caller authenticate(String token) {
        if (ttlNanos <= 0) {
            return delegate.authenticate(token);
        }
        String key = hash(token);
        long now = System.nanoTime();
        Entry fresh = new Entry(new CompletableFuture<>(), now + ttlNanos);
        Entry entry = entries.compute(key, (k, old) -> old != null && old.expiresAtNanos - now > 0 ? old : fresh);
        if (entry == fresh) {
            trim(now);
            try {
                fresh.answer.complete(delegate.authenticate(token));
            } catch (Refusal refusal) {
                fresh.answer.completeExceptionally(refusal);
                if (refusal.reason() != Refusal.Reason.UNAUTHENTICATED) {
                    entries.remove(key, fresh);
                }
            } catch (RuntimeException e) {
                fresh.answer.completeExceptionally(e);
                entries.remove(key, fresh);
            }
        }
        try {
            return entry.answer.join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException cause) {
                throw cause;
            }
            throw e;
        }
    }

    /** Entries held now (for tests). */
    int size() {
        return entries.size();
    }

    private void trim(long now) {
        if (entries.size() <= maxEntries) {
            return;
        }
        entries.values().removeIf(e -> e.expiresAtNanos - now <= 0);
        // still full of live entries: drop arbitrary ones; the cost is only an extra TokenReview
        Iterator<String> keys = entries.keySet().iterator();
        while (entries.size() > maxEntries && keys.hasNext()) {
            keys.next();
            keys.remove();
        }
    }

    private static String hash(String token) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
