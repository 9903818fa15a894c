package dev.ambient.ztunnel.dns;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * Upstream answers kept for their TTL, bounded: at most {@code maxEntries} answers of at most
 * {@value #MAX_ENTRY_BYTES} bytes each (so a pod asking for a million different names costs at
 * most that), the least recently used going first; a TTL held to {@code maxTtl}, a negative
 * answer's to {@code maxNegativeTtl}. Keyed by upstream and question (name in lower case, type,
 * class). Thread-safe; every operation is a map access under one lock.
 */
public final class DnsCache {

    /** Larger answers (rare: big TXT sets) are not kept. */
    static final int MAX_ENTRY_BYTES = 4096;

    record Key(String upstream, String name, int type, int qclass) {
    }

    private record Cached(DnsMessage answer, long storedNanos, long expiresNanos) {
    }

    private final int maxEntries;
    private final long maxTtlSeconds;
    private final long maxNegativeTtlSeconds;
    private final LongSupplier clock;
    private final LinkedHashMap<Key, Cached> entries;

    public DnsCache(int maxEntries, Duration maxTtl, Duration maxNegativeTtl) {
        this(maxEntries, maxTtl, maxNegativeTtl, System::nanoTime);
    }

    DnsCache(int maxEntries, Duration maxTtl, Duration maxNegativeTtl, LongSupplier clock) {
        this.maxEntries = Math.max(0, maxEntries);
        this.maxTtlSeconds = maxTtl.toSeconds();
        this.maxNegativeTtlSeconds = maxNegativeTtl.toSeconds();
        this.clock = clock;
        this.entries = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<Key, Cached> eldest) {
                return size() > DnsCache.this.maxEntries;
            }
        };
    }

    /** Keeps an upstream answer if it may be cached. */
    public void put(Key key, DnsMessage answer) {
        if (maxEntries == 0 || answer.raw().length > MAX_ENTRY_BYTES) {
            return;
        }
        var ttl = answer.cacheTtl();
        if (ttl.isEmpty() || ttl.getAsInt() == 0) {
            return;
        }
        boolean negative = answer.rcode() == DnsMessage.NXDOMAIN || answer.answers().isEmpty();
        long seconds = Math.min(ttl.getAsInt(), negative ? maxNegativeTtlSeconds : maxTtlSeconds);
        if (seconds <= 0) {
            return;
        }
        long now = clock.getAsLong();
        synchronized (this) {
            entries.put(key, new Cached(answer, now, now + seconds * 1_000_000_000L));
        }
    }

    /** A fresh answer for {@code query} (its id, question, TTLs lowered by its age), or null. */
    public byte[] get(Key key, DnsMessage query) {
        long now = clock.getAsLong();
        Cached e;
        synchronized (this) {
            e = entries.get(key);
            if (e == null) {
                return null;
            }
            if (now >= e.expiresNanos()) {
                entries.remove(key);
                return null;
            }
        }
        return DnsMessage.reuse(e.answer(), query, (now - e.storedNanos()) / 1_000_000_000L);
    }

    /** The cached addresses of a name (the proxy's own lookups), or null when not cached. */
    public DnsMessage peek(Key key) {
        long now = clock.getAsLong();
        synchronized (this) {
            Cached e = entries.get(key);
            return e == null || now >= e.expiresNanos() ? null : e.answer();
        }
    }

    public synchronized int size() {
        return entries.size();
    }
}
