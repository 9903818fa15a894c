package dev.ambient.waypoint.telemetry;

import org.jboss.logging.Logger;

/**
 * One line per request, in the category {@code dev.ambient.waypoint.access}, as Envoy's default
 * access log says it: the path as the client sent it (Envoy's {@code X-ENVOY-ORIGINAL-PATH?:PATH}),
 * and, when the waypoint forwarded another one (normalized or rewritten by a route), that one as
 * {@code forwarded=}. Control characters in either are escaped, so a client cannot forge lines.
 */
public final class AccessLog {

    private static final Logger LOG = Logger.getLogger("dev.ambient.waypoint.access");

    private AccessLog() {
    }

    /** @param forwardedPath the path sent on, when it is not {@code path}; else null */
    public static void request(String method, String path, String forwardedPath, String protocol, int status,
            String flags, long requestBytes, long responseBytes, double durationMillis, String upstream, String source,
            String peer, String service, String route, int attempts, String traceparent, String reason) {
        if (LOG.isInfoEnabled()) {
            LOG.infof("\"%s %s %s\" %d %s %d %d %.1fms upstream=%s src=%s peer=%s service=%s route=%s attempts=%d"
                    + " traceparent=%s%s%s", method, escaped(path), protocol, status, flags, requestBytes, responseBytes,
                    durationMillis, upstream, source, peer, service, route, attempts, traceparent,
                    forwardedPath == null ? "" : " forwarded=" + escaped(forwardedPath),
                    reason == null ? "" : " reason=\"" + reason + "\"");
        }
    }

    /** Control characters, space, quote and backslash as %XX: one line, one field. */
    static String escaped(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c <= ' ' || c == 0x7f || c == '"' || c == '\\') {
                StringBuilder b = new StringBuilder(s.length() + 8).append(s, 0, i);
                for (int j = i; j < s.length(); j++) {
                    char d = s.charAt(j);
                    if (d <= ' ' || d == 0x7f || d == '"' || d == '\\') {
                        b.append('%').append(Character.toUpperCase(Character.forDigit(d >> 4 & 0xf, 16)))
                                .append(Character.toUpperCase(Character.forDigit(d & 0xf, 16)));
                    } else {
                        b.append(d);
                    }
                }
                return b.toString();
            }
        }
        return s;
    }

    public static void connection(String what, String source, String peer, String target, String outcome) {
        LOG.infof("%s src=%s peer=%s target=%s %s", what, source, peer, target, outcome);
    }
}
