package dev.ambient.waypoint.proxy;

/** Why an upstream attempt produced no response; the kind decides retries and the status returned. */
public final class UpstreamFailure extends RuntimeException {

    public enum Kind {
        /** No tunnel to the endpoint: dial, TLS, identity or CONNECT refused (retry-on connect-failure; 503 UF). */
        CONNECT,
        /** The connection ended before a full response (retry-on reset; 503 UC). */
        RESET,
        /** The endpoint answered with something that is not HTTP of the version spoken (503 UPE). */
        PROTOCOL,
        /** The per-try timeout fired (504 UT). */
        TIMEOUT,
        /** The response exceeded the body limit (502). */
        TOO_LARGE,
        /** The response body did not fit in what is left of the waypoint's body budget (503 UO). */
        OVERLOADED
    }

    private final Kind kind;

    public UpstreamFailure(Kind kind, String message) {
        super(message, null, false, false);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }
}
