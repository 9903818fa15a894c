package dev.ambient.controlplane;

import dev.ambient.net.LineThrottle;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Metrics;
import java.time.Duration;
import org.jboss.logging.Logger;

/**
 * One kind of refusal of a {@code control-plane.grpc.*} limit: each is counted
 * ({@code control_plane_grpc_refusals_total{limit}}, in Micrometer's global registry, which Quarkus
 * scrapes with the service's own metrics), and logged, but a flood of them must not become a flood
 * of lines: at most one line every 10 s, saying how many were refused since the line before.
 * Other listeners that refuse what anyone may send them use it with their own counter (the
 * waypoint's ext_authz bridge). Thread-safe.
 */
public final class RefusalLog {

    private final Logger log;
    private final LineThrottle lines = new LineThrottle(Duration.ofSeconds(10));
    private final Counter counted;

    /** @param limit the metric's {@code limit} label */
    RefusalLog(Class<?> category, String limit) {
        this(category, Counter.builder("control_plane_grpc_refusals").tag("limit", limit)
                .description("Connections and calls refused by a control-plane.grpc limit").register(Metrics.globalRegistry));
    }

    /** @param counted incremented for every refusal, logged or not */
    public RefusalLog(Class<?> category, Counter counted) {
        this.log = Logger.getLogger(category);
        this.counted = counted;
    }

    /** Counts one refusal; logs {@code line} (WARN) unless a line of this kind was written in the last 10 s. */
    public void refused(String line) {
        counted.increment();
        int notLogged = lines.event();
        if (notLogged != LineThrottle.NOT_DUE) {
            log.warn(notLogged == 0 ? line : line + " (" + notLogged + " more refused since the last line)");
        }
    }
}
