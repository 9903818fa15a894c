package dev.ambient.hbone;

import dev.ambient.net.LineThrottle;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.EnumMap;
import java.util.Map;

/**
 * Which refusals of a limit get a log line: the first of each {@link HboneLimit} per interval, the
 * others only counted ({@link HboneRequestHandler#limitCounted}). A flood of connections refused at
 * accept must not become a flood of log lines; each line says how many were not logged since the
 * one before. Thread-safe: one throttle serves every listener of a process.
 */
final class ReportThrottle {

    static final Duration INTERVAL = Duration.ofSeconds(10);

    private final Map<HboneLimit, LineThrottle> lines = new EnumMap<>(HboneLimit.class);

    ReportThrottle(Duration interval) {
        for (HboneLimit limit : HboneLimit.values()) {
            lines.put(limit, new LineThrottle(interval));
        }
    }

    /** Reports one refusal to {@code handler}: with a log line if none was written for this limit lately. */
    void report(HboneRequestHandler handler, SocketAddress remote, HboneLimit limit, String detail) {
        int unlogged = lines.get(limit).event();
        if (unlogged == LineThrottle.NOT_DUE) {
            handler.limitCounted(remote, limit);
        } else {
            handler.limitReached(remote, limit, unlogged == 0 ? detail
                    : detail + " (" + unlogged + " more refused for this reason since the last line)");
        }
    }
}
