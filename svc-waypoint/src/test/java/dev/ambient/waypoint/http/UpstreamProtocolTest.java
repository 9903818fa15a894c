package dev.ambient.waypoint.http;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class UpstreamProtocolTest {

    @Test
    void theDeclaredProtocolWinsElseTheClientsVersion() {
        assertTrue(UpstreamProtocol.http2("grpc", false), "gRPC needs HTTP/2 even from an HTTP/1.1 client");
        assertTrue(UpstreamProtocol.http2("http2", false));
        assertFalse(UpstreamProtocol.http2("http", true), "declared HTTP/1.1 stays HTTP/1.1 for an h2 client");
        assertFalse(UpstreamProtocol.http2("grpc-web", true), "gRPC-Web is carried over HTTP/1.1");
        assertTrue(UpstreamProtocol.http2("", true), "undeclared: as the client spoke");
        assertFalse(UpstreamProtocol.http2("", false));
        assertTrue(UpstreamProtocol.http2("tcp", true), "not an HTTP protocol: as the client spoke");
    }
}
