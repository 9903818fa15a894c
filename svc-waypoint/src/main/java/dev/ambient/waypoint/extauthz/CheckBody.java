package dev.ambient.waypoint.extauthz;

/**
 * The request body an authorizer judges: the first bytes of the body exactly as they will be
 * forwarded (the whole body unless {@code partial}), and how many bytes of it the waypoint had
 * received when it asked ({@code received}, gRPC's HttpRequest.size).
 */
public record CheckBody(byte[] bytes, boolean partial, long received) {

    /** Envoy's header on a check that carries a body: whether it is only the body's first part. */
    static final String PARTIAL_HEADER = "x-envoy-auth-partial-body";
}
