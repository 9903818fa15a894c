package dev.ambient.ztunnel.inbound;

import dev.ambient.net.LineThrottle;
import dev.ambient.ztunnel.metrics.TrafficMetrics;
import java.net.InetAddress;
import java.time.Duration;
import org.jboss.logging.Logger;

/**
 * Inbound connections that reached the application from the pod's own address because the
 * client's could not be bound (IP_TRANSPARENT refused: no CAP_NET_ADMIN). Never silent, since the
 * application's logs and its own address checks then see the pod, not the client: each one counts
 * in {@code ztunnel_inbound_source_fallbacks_total{reason}}, and a warning is logged at most every
 * 10 s, saying how many were not logged since. Thread-safe: one for all pods.
 */
public final class SourceFallbacks {

    private static final Logger LOG = Logger.getLogger(SourceFallbacks.class);

    private final TrafficMetrics metrics;
    private final LineThrottle lines = new LineThrottle(Duration.ofSeconds(10));

    public SourceFallbacks(TrafficMetrics metrics) {
        this.metrics = metrics;
    }

    void fellBack(String where, InetAddress client, Throwable cause) {
        metrics.sourceFallback(cause instanceof WorkloadDialer.TransparentBindFailed ? "ip_transparent" : "bind");
        int others = lines.event();
        if (others != LineThrottle.NOT_DUE) {
            LOG.warnf("inbound: could not connect to the application from the client's address %s in %s (%s); it"
                    + " sees the pod's own address instead%s", client.getHostAddress(), where, cause.getMessage(),
                    others == 0 ? "" : " (" + others + " more since the last line)");
        }
    }
}
