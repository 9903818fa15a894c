package dev.ambient.waypoint.http;

import java.util.Set;

/**
 * Which HTTP version the waypoint speaks to an endpoint, as Istio decides it: the service port's
 * declared protocol (as svc-xds publishes it: appProtocol, with kubernetes.io/h2c as http2, or the
 * port name) when there is one, else the client's own version.
 * So gRPC reaches a server that speaks only HTTP/2, and an HTTP/1.1-only server declared "http"
 * still gets HTTP/1.1 from an HTTP/2 client.
 */
public final class UpstreamProtocol {

    private static final Set<String> HTTP2 = Set.of("http2", "grpc");
    private static final Set<String> HTTP1 = Set.of("http", "grpc-web");

    private UpstreamProtocol() {
    }

    /** Whether a declared protocol is HTTP of some version (the waypoint then never treats the port as TCP). */
    public static boolean isHttp(String appProtocol) {
        return HTTP2.contains(appProtocol) || HTTP1.contains(appProtocol);
    }

    /** True for HTTP/2 with prior knowledge, false for HTTP/1.1. */
    public static boolean http2(String appProtocol, boolean downstreamHttp2) {
        if (HTTP2.contains(appProtocol)) {
            return true;
        }
        if (HTTP1.contains(appProtocol)) {
            return false;
        }
        return downstreamHttp2;
    }
}
