package dev.ambient.waypoint.proxy;

import io.netty.handler.codec.http.HttpResponse;

/** Why an upstream attempt produced no (whole) response; the kind decides retries and the status returned. */
public final class UpstreamFailure extends RuntimeException {

    public enum Kind {
        /** No tunnel to the endpoint: dial, TLS, identity or CONNECT refused; the request never left (retry-on connect-failure; 503 UF). */
        CONNECT,
        /** The connection or stream ended before the whole response (retry-on reset; 503 UC). */
        RESET,
        /** The endpoint refused the stream before acting on it (HTTP/2 REFUSED_STREAM; retry-on refused-stream; 503 UC). */
        REFUSED,
        /** The endpoint answered with something that is not HTTP of the version spoken (503 UPE). */
        PROTOCOL,
        /** A timeout fired: per-try or the route's (504 UT). */
        TIMEOUT
    }

    private final Kind kind;

    public UpstreamFailure(Kind kind, String message) {
        super(message, null, false, false);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }

    /** A failure when a response head did not parse as HTTP of {@code version}; else null. */
    static UpstreamFailure malformed(HttpResponse response, String version) {
        int status = response.status().code();
        if (!response.decoderResult().isFailure() && status >= 100 && status <= 599) {
            return null;
        }
        // A status outside 100..599 is no HTTP status (and would make a response_code label of anything).
        String why = response.decoderResult().isFailure() ? response.decoderResult().cause().getMessage()
                : "status " + status;
        return new UpstreamFailure(Kind.PROTOCOL, "not a valid " + version + " response: " + why);
    }
}
