package dev.ambient.hbone;

import java.util.concurrent.ConcurrentHashMap;

/**
 * How many of something each key holds now, each key up to a bound; thread-safe. A key whose count
 * falls to zero is forgotten, so the map never holds more keys than there are things counted.
 */
public final class BoundedCounts<K> {

    private final ConcurrentHashMap<K, Integer> counts = new ConcurrentHashMap<>();
    private final int bound;

    public BoundedCounts(int bound) {
        this.bound = bound;
    }

    public int bound() {
        return bound;
    }

    /** One more for {@code key}, unless it holds the bound already; false then. */
    public boolean tryAcquire(K key) {
        boolean[] acquired = {false};
        counts.compute(key, (k, n) -> {
            int held = n == null ? 0 : n;
            if (held >= bound) {
                return n;
            }
            acquired[0] = true;
            return held + 1;
        });
        return acquired[0];
    }

    public void release(K key) {
        counts.computeIfPresent(key, (k, n) -> n <= 1 ? null : n - 1);
    }

    public int count(K key) {
        return counts.getOrDefault(key, 0);
    }

    /** Keys holding anything now. */
    public int keys() {
        return counts.size();
    }
}
