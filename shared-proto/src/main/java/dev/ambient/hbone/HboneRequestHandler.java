package dev.ambient.hbone;

import java.net.SocketAddress;

/** What an HBONE server does with each CONNECT: decide, then {@link HboneRequest#accept} or {@link HboneRequest#reject}. */
public interface HboneRequestHandler {

    /** Called on the connection's event loop; must not block. */
    void handle(HboneRequest request);

    /** A connection (TLS, ALPN) or a stream (400) refused before reaching {@link #handle}: one log line, a metric. */
    default void refused(SocketAddress remote, String reason) {
    }
}
