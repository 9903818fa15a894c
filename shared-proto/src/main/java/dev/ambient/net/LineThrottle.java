package dev.ambient.net;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * At most one log line per interval for one kind of event that anyone may cause by the thousand (a
 * refused connection, a refused call): the first event of an interval gets its line, the others
 * are only counted, and the next line says how many went unlogged. Thread-safe.
 */
public final class LineThrottle {

    /** No line is due: the event is counted for the next one. */
    public static final int NOT_DUE = -1;

    private final long intervalNanos;
    private final AtomicLong nextLineNanos = new AtomicLong(System.nanoTime());
    private final AtomicInteger unlogged = new AtomicInteger();

    public LineThrottle(Duration interval) {
        this.intervalNanos = interval.toNanos();
    }

    /**
     * One event: {@link #NOT_DUE} when it must not be logged, else how many events went unlogged
     * since the last line (its line should say so).
     */
    public int event() {
        long now = System.nanoTime();
        long next = nextLineNanos.get();
        if (now - next >= 0 && nextLineNanos.compareAndSet(next, now + intervalNanos)) {
            return unlogged.getAndSet(0);
        }
        unlogged.incrementAndGet();
        return NOT_DUE;
    }
}
