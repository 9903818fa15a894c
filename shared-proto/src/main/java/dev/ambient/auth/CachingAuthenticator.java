package dev.ambient.auth;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Remembers a token's answer for a short while, so that a burst of calls from one ztunnel (a CSR
 * for every pod on its node at once, after a restart) costs one TokenReview, not one per pod.
 * Concurrent calls with the same token wait for the one check in flight. Valid and rejected
 * tokens are remembered, in two maps bounded apart, so a flood of distinct bad tokens can never
 * push a valid one out; "could not check" (an outage, too many checks at once) is not remembered.
 * Tokens are kept only as SHA-256 hashes.
 */
public final class CachingAuthenticator implements TokenAuthenticator {

    private record Entry(CompletableFuture<Caller> answer, long expiresAtNanos) {}

    private final TokenAuthenticator delegate;
    private final long ttlNanos;
    private final int maxEntries;
    private final ConcurrentHashMap<String, Entry> valid = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<String, Entry> rejected = new ConcurrentHashMap<>();
    /** Checks in flight, whatever their outcome will be. */
    private final ConcurrentHashMap<String, Entry> pending = new ConcurrentHashMap<>();

    public CachingAuthenticator(TokenAuthenticator delegate, Duration ttl, int maxEntries) {
        this.delegate = delegate;
        this.ttlNanos = ttl.toNanos();
        this.maxEntries = Math.max(1, maxEntries);
    }

    @Override
    public Caller authenticate(String token, String peer) {
        if (ttlNanos <= 0) {
            return delegate.authenticate(token, peer);
        }
        String key = hash(token);
        long now = System.nanoTime();
        Entry known = fresh(valid, key, now);
        if (known == null) {
            known = fresh(rejected, key, now);
        }
        if (known != null) {
            return join(known);
        }
        Entry mine = new Entry(new CompletableFuture<>(), 0);
        Entry inFlight = pending.putIfAbsent(key, mine);
        if (inFlight != null) {
            return join(inFlight);
        }
        try {
            Caller caller = delegate.authenticate(token, peer);
            remember(valid, key, new Entry(CompletableFuture.completedFuture(caller), System.nanoTime() + ttlNanos));
            mine.answer.complete(caller);
        } catch (AuthenticationFailure failure) {
            if (failure.kind() == AuthenticationFailure.Kind.UNAUTHENTICATED) {
                remember(rejected, key, new Entry(CompletableFuture.failedFuture(failure), System.nanoTime() + ttlNanos));
            }
            mine.answer.completeExceptionally(failure);
        } catch (RuntimeException e) {
            mine.answer.completeExceptionally(e);
        } finally {
            pending.remove(key, mine);
        }
        return join(mine);
    }

    /** Valid and rejected entries held now (for tests). */
    int size() {
        return valid.size() + rejected.size();
    }

    int rejectedSize() {
        return rejected.size();
    }

    private static Entry fresh(Map<String, Entry> entries, String key, long now) {
        Entry e = entries.get(key);
        if (e != null && e.expiresAtNanos - now <= 0) {
            entries.remove(key, e);
            return null;
        }
        return e;
    }

    private void remember(ConcurrentHashMap<String, Entry> entries, String key, Entry entry) {
        entries.put(key, entry);
        if (entries.size() <= maxEntries) {
            return;
        }
        long now = System.nanoTime();
        entries.values().removeIf(e -> e.expiresAtNanos - now <= 0);
        // still full of live entries: drop arbitrary ones; the cost is only an extra TokenReview
        Iterator<String> keys = entries.keySet().iterator();
        while (entries.size() > maxEntries && keys.hasNext()) {
            if (!keys.next().equals(key)) {
                keys.remove();
            }
        }
    }

    private static Caller join(Entry entry) {
        try {
            return entry.answer.join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException cause) {
                throw cause;
            }
            throw e;
        }
    }

    private static String hash(String token) {
        try {
            return java.util.HexFormat.of().formatHex(
                    MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
