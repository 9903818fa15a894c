package dev.ambient.waypoint.telemetry;

import org.jboss.logging.Logger;

/** One line per request, in the category {@code dev.ambient.waypoint.access}, as Envoy's default access log says it. */
public final class AccessLog {

    private static final Logger LOG = Logger.getLogger("dev.ambient.waypoint.access");

    private AccessLog() {
    }

    public static void request(String method, String path, String protocol, int status, String flags, long requestBytes,
            long responseBytes, double durationMillis, String upstream, String source, String peer, String service,
            String route, int attempts, String traceparent, String reason) {
        if (LOG.isInfoEnabled()) {
            LOG.infof("\"%s %s %s\" %d %s %d %d %.1fms upstream=%s src=%s peer=%s service=%s route=%s attempts=%d"
                    + " traceparent=%s%s", method, path, protocol, status, flags, requestBytes, responseBytes,
                    durationMillis, upstream, source, peer, service, route, attempts, traceparent,
                    reason == null ? "" : " reason=\"" + reason + "\"");
        }
    }

    public static void connection(String what, String source, String peer, String target, String outcome) {
        LOG.infof("%s src=%s peer=%s target=%s %s", what, source, peer, target, outcome);
    }
}
