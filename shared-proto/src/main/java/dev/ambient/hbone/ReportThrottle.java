package dev.ambient.hbone;

import java.net.SocketAddress;
import java.time.Duration;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Which refusals of a limit get a log line: the first of each {@link HboneLimit} per interval, the
 * others only counted ({@link HboneRequestHandler#limitCounted}). A flood of connections refused at
 * accept must not become a flood of log lines; each line says how many were not logged since the
 * one before. Thread-safe: one throttle serves every listener of a process.
 */
final class ReportThrottle {

    static final Duration INTERVAL = Duration.ofSeconds(10);

    private record Window(AtomicLong nextLineNanos, AtomicInteger unlogged) {
    }

    private final long intervalNanos;
    private final Map<HboneLimit, Window> windows = new EnumMap<>(HboneLimit.class);

    ReportThrottle(Duration interval) {
        this.intervalNanos = interval.toNanos();
        long now = System.nanoTime();
        for (HboneLimit limit : HboneLimit.values()) {
            windows.put(limit, new Window(new AtomicLong(now), new AtomicInteger()));
        }
    }

    /** Reports one refusal to {@code handler}: with a log line if none was written for this limit lately. */
    void report(HboneRequestHandler handler, SocketAddress remote, HboneLimit limit, String detail) {
        Window w = windows.get(limit);
        long now = System.nanoTime();
        long next = w.nextLineNanos().get();
        if (now - next >= 0 && w.nextLineNanos().compareAndSet(next, now + intervalNanos)) {
            int unlogged = w.unlogged().getAndSet(0);
            handler.limitReached(remote, limit, unlogged == 0 ? detail
                    : detail + " (" + unlogged + " more refused for this reason since the last line)");
        } else {
            w.unlogged().incrementAndGet();
            handler.limitCounted(remote, limit);
        }
    }
}
