package dev.ambient.hbone;

import java.net.SocketAddress;

/**
 * What an HBONE server does with each CONNECT: decide, then {@link HboneRequest#accept} or
 * {@link HboneRequest#reject}. Until it answers, the request counts among its connection's streams
 * in setup ({@link HboneLimits#maxStreamsInSetup}), even if the client resets it meanwhile: a
 * handler that finds the stream gone calls {@link HboneRequest#abandon}. One not answered within
 * {@link HboneLimits#streamSetupTimeout} is answered 503 for it.
 */
public interface HboneRequestHandler {

    /** Called on the connection's event loop; must not block. */
    void handle(HboneRequest request);

    /** A connection (TLS, ALPN) or a stream (400) refused before reaching {@link #handle}: one log line, a metric. */
    default void refused(SocketAddress remote, String reason) {
    }

    /**
     * A peer connection hit one of the server's limits: one log line, a metric. Called once per hit
     * (stream refusals beyond the setup bound: once per connection; connections refused by the
     * {@link HboneAdmission}: once every few seconds per limit, the others go to {@link #limitCounted}).
     * By default a {@link #refused}.
     */
    default void limitReached(SocketAddress remote, HboneLimit limit, String detail) {
        refused(remote, limit.tag() + ": " + detail);
    }

    /**
     * A limit hit again while its log line is held back (refusals at accept can come by the
     * thousand; {@link #limitReached} is called for one of them every few seconds, with how many
     * were not logged), or one whose lines are written where it is hit ({@link HboneLimit#FINISHING_TUNNELS}):
     * count it, write nothing.
     */
    default void limitCounted(SocketAddress remote, HboneLimit limit) {
    }
}
