package dev.ambient.waypoint.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ambient.waypoint.proxy.ProtocolSniffer.Protocol;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.nio.charset.StandardCharsets;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** What the first bytes of a tunnel make it, on a port declared HTTP and on an undeclared one (null: not yet known). */
class ProtocolSnifferTest {

    static Stream<Arguments> table() {
        return Stream.of(
                Arguments.of("GET / HTTP/1.1\r\n", Protocol.HTTP1, Protocol.HTTP1),
                Arguments.of("GE", null, Protocol.HTTP1),
                Arguments.of("PROPFIND /x HTTP/1.1", Protocol.HTTP1, Protocol.HTTP1),
                Arguments.of("\r\n\r\nPOST / HTTP/1.1", Protocol.HTTP1, Protocol.HTTP1),
                Arguments.of("\r\n", null, Protocol.HTTP1),
                Arguments.of("\r\n".repeat(8), Protocol.TCP, Protocol.HTTP1),
                Arguments.of("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Protocol.HTTP2, Protocol.HTTP2),
                Arguments.of("PRI * HTTP/2", null, null),
                Arguments.of("\u0016\u0003\u0001\u0000", Protocol.TCP, Protocol.HTTP1),
                Arguments.of("SSH-2.0-OpenSSH_9.2\r\n", Protocol.TCP, Protocol.HTTP1),
                Arguments.of(" GET / HTTP/1.1", Protocol.TCP, Protocol.HTTP1),
                Arguments.of("A".repeat(30), Protocol.TCP, Protocol.HTTP1),
                Arguments.of("*1\r\n$4\r\nPING\r\n", Protocol.TCP, Protocol.HTTP1));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("table")
    void firstBytes(String bytes, Protocol undeclared, Protocol declaredHttp) {
        ByteBuf b = Unpooled.copiedBuffer(bytes, StandardCharsets.ISO_8859_1);
        try {
            assertEquals(undeclared, ProtocolSniffer.classify(b, true), "undeclared port");
            assertEquals(declaredHttp, ProtocolSniffer.classify(b, false), "port declared http");
        } finally {
            b.release();
        }
    }
}
