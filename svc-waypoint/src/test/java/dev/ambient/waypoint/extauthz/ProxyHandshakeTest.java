package dev.ambient.waypoint.extauthz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The bridge's handshake parsing on what hostile or partial input it may get (no sockets). */
class ProxyHandshakeTest {

    static ByteBuf text(String s) {
        return Unpooled.copiedBuffer(s, StandardCharsets.ISO_8859_1);
    }

    static ByteBuf bytes(int... b) {
        ByteBuf out = Unpooled.buffer();
        for (int x : b) {
            out.writeByte(x);
        }
        return out;
    }

    @Test
    void httpConnectToIpLiteralsOnlyAndWholeHeadsOnly() {
        assertInstanceOf(ProxyHandshake.More.class, ProxyHandshake.parse(text("CONNECT 10.0.0.1:80 HTTP/1.1\r\n"), false));
        var c = (ProxyHandshake.Connect) ProxyHandshake.parse(text("CONNECT [fd00::5]:8000 HTTP/1.1\r\nHost: x\r\n\r\nDATA"),
                false);
        assertEquals(new InetSocketAddress(InetAddress.ofLiteral("fd00::5"), 8000), c.target());
        assertEquals("CONNECT [fd00::5]:8000 HTTP/1.1\r\nHost: x\r\n\r\n".length(), c.consumed(), "early data left over");
        for (String bad : new String[] {"GET http://10.0.0.1/ HTTP/1.1\r\n\r\n", "CONNECT ext-authz.svc:80 HTTP/1.1\r\n\r\n",
                "CONNECT 10.0.0.1:0 HTTP/1.1\r\n\r\n", "CONNECT 10.0.0.1:99999 HTTP/1.1\r\n\r\n", "CONNECT 10.0.0.1 HTTP/1.1\r\n\r\n",
                "CONNECT 10.0.0.1:80 SPDY/3\r\n\r\n"}) {
            assertInstanceOf(ProxyHandshake.Bad.class, ProxyHandshake.parse(text(bad), false), bad);
        }
    }

    @Test
    void socks5GreetingThenConnectByAddressOrLiteralName() {
        assertInstanceOf(ProxyHandshake.More.class, ProxyHandshake.parse(bytes(5, 2, 2), false));
        assertEquals(new ProxyHandshake.Greeting(4), ProxyHandshake.parse(bytes(5, 2, 2, 0), false));
        assertInstanceOf(ProxyHandshake.Bad.class, ProxyHandshake.parse(bytes(5, 1, 2), false), "username/password only");
        var v4 = (ProxyHandshake.Connect) ProxyHandshake.parse(bytes(5, 1, 0, 1, 10, 0, 0, 7, 0x1f, 0x40), true);
        assertEquals(new InetSocketAddress(InetAddress.ofLiteral("10.0.0.7"), 8000), v4.target());
        assertEquals(10, v4.consumed());
        ByteBuf literal = bytes(5, 1, 0, 3, 8).writeBytes("10.0.0.8".getBytes(StandardCharsets.US_ASCII)).writeShort(9000);
        assertEquals(new InetSocketAddress(InetAddress.ofLiteral("10.0.0.8"), 9000),
                ((ProxyHandshake.Connect) ProxyHandshake.parse(literal, true)).target());
        ByteBuf name = bytes(5, 1, 0, 3, 9).writeBytes("localhost".getBytes(StandardCharsets.US_ASCII)).writeShort(80);
        assertInstanceOf(ProxyHandshake.Bad.class, ProxyHandshake.parse(name, true), "never resolved");
        assertInstanceOf(ProxyHandshake.Bad.class, ProxyHandshake.parse(bytes(5, 2, 0, 1, 10, 0, 0, 7, 0, 80), true), "BIND");
        assertInstanceOf(ProxyHandshake.More.class, ProxyHandshake.parse(bytes(5, 1, 0, 4, 0, 0), true), "half an IPv6 address");
    }
}
