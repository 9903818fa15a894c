package dev.ambient.controlplane;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.jboss.logging.Logger;

/**
 * One kind of refusal's log: a flood of them must not become a flood of lines, so at most one line
 * every 10 s, saying how many were refused since the line before. Thread-safe.
 */
final class RefusalLog {

    private static final long INTERVAL_NANOS = 10_000_000_000L;

    private final Logger log;
    private final AtomicLong nextLine = new AtomicLong(System.nanoTime());
    private final AtomicInteger unlogged = new AtomicInteger();

    RefusalLog(Class<?> category) {
        this.log = Logger.getLogger(category);
    }

    void refused(String line) {
        long now = System.nanoTime();
        long next = nextLine.get();
        if (now - next >= 0 && nextLine.compareAndSet(next, now + INTERVAL_NANOS)) {
            int notLogged = unlogged.getAndSet(0);
            log.warn(notLogged == 0 ? line : line + " (" + notLogged + " more refused since the last line)");
        } else {
            unlogged.incrementAndGet();
        }
    }
}
