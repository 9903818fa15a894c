package dev.ambient.hbone;

/**
 * A bound of the HBONE server that a peer connection ran into (see {@link HboneLimits} for one
 * connection, {@link HboneAdmission} across connections), each with the tag its refusal metric carries.
 */
public enum HboneLimit {
    /** TLS handshake, ALPN and the client's HTTP/2 preface and SETTINGS not done in time: closed. */
    HANDSHAKE_TIMEOUT("handshake_timeout"),
    /** No stream for the idle timeout: GOAWAY(NO_ERROR), then closed. */
    IDLE_TIMEOUT("idle_timeout"),
    /** Too many CONNECTs in setup: further ones refused with RST_STREAM(REFUSED_STREAM). */
    STREAMS_IN_SETUP("streams_in_setup"),
    /** A CONNECT its handler did not answer in time: answered 503. */
    SETUP_TIMEOUT("setup_timeout"),
    /** Too many streams reset before they were answered: GOAWAY(ENHANCE_YOUR_CALM). */
    RAPID_RESET("rapid_reset"),
    /**
     * The HTTP/2 codec's own guards or a protocol violation (header list too large, CONTINUATION,
     * control-frame or RST_STREAM floods, malformed frames): GOAWAY with that error, then closed.
     */
    HTTP2_ERROR("http2_error"),
    /** Too many connections from one address still in their handshake: closed at accept. */
    HANDSHAKES_PER_SOURCE("handshakes_per_source"),
    /** Too many HBONE connections held by the process: closed at accept. */
    CONNECTIONS("connections"),
    /** Too many established connections of one peer identity: GOAWAY(ENHANCE_YOUR_CALM) after its SETTINGS. */
    CONNECTIONS_PER_IDENTITY("connections_per_identity"),
    /**
     * More tunnels ended with END_STREAM + RST_STREAM(NO_ERROR) still finishing on one connection
     * than it may have streams ({@link FinishingTunnels}): the tunnel aborted. Only counted
     * ({@link HboneRequestHandler#limitCounted}): its log lines are written where it is aborted.
     */
    FINISHING_TUNNELS("finishing_tunnels");

    private final String tag;

    HboneLimit(String tag) {
        this.tag = tag;
    }

    /** The value of the refusal metric's reason tag. */
    public String tag() {
        return tag;
    }
}
