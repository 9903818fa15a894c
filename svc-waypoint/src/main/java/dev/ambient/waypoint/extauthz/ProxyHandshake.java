package dev.ambient.waypoint.extauthz;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;

/**
 * The two proxy handshakes our authorizer clients speak to {@link MeshAuthorizerBridge}: HTTP
 * CONNECT (grpc-java's proxy support) and SOCKS5 CONNECT without authentication (Vert.x tunnels
 * plaintext HTTP through SOCKS5 only; through an HTTP proxy it would forward, not CONNECT). Only
 * IP literals are accepted as targets: the bridge resolves nothing. Pure parsing of what has
 * arrived so far; the caller accumulates and bounds it.
 */
final class ProxyHandshake {

    /** The most bytes a handshake may take (an HTTP CONNECT's head); more is refused. */
    static final int MAX_BYTES = 8 * 1024;

    private static final byte SOCKS5 = 5;
    private static final byte NO_AUTH = 0;

    enum Protocol {
        HTTP, SOCKS5
    }

    /** What the bytes so far come to. */
    sealed interface Step {
    }

    /** Not enough bytes yet. */
    record More() implements Step {
    }

    /** A SOCKS5 greeting offering no-authentication: answer {@link #socksMethodAccepted()}, then expect the command. */
    record Greeting(int consumed) implements Step {
    }

    /** A CONNECT to {@code target}; {@code consumed} bytes were the request. */
    record Connect(Protocol protocol, InetSocketAddress target, int consumed) implements Step {
    }

    /** Not a request we serve; answer {@link #refusal(Protocol, Refusal)} (null protocol: just close). */
    record Bad(Protocol protocol, String reason) implements Step {
    }

    /** Why a CONNECT is not carried, as each protocol says it. */
    enum Refusal {
        BAD_REQUEST("400 Bad Request", (byte) 1), NOT_ALLOWED("403 Forbidden", (byte) 2),
        UNREACHABLE("502 Bad Gateway", (byte) 4), BUSY("503 Service Unavailable", (byte) 1);

        final String httpStatus;
        final byte socksReply;

        Refusal(String httpStatus, byte socksReply) {
            this.httpStatus = httpStatus;
            this.socksReply = socksReply;
        }
    }

    private ProxyHandshake() {
    }

    /**
     * Reads {@code in} from its reader index without consuming it. {@code greeted}: the SOCKS5
     * greeting was already answered, so a SOCKS5 command comes next.
     */
    static Step parse(ByteBuf in, boolean greeted) {
        if (!in.isReadable()) {
            return new More();
        }
        int at = in.readerIndex();
        if (greeted) {
            return socksCommand(in, at);
        }
        if (in.getByte(at) == SOCKS5) {
            if (in.readableBytes() < 2) {
                return new More();
            }
            int methods = in.getUnsignedByte(at + 1);
            if (in.readableBytes() < 2 + methods) {
                return new More();
            }
            for (int i = 0; i < methods; i++) {
                if (in.getByte(at + 2 + i) == NO_AUTH) {
                    return new Greeting(2 + methods);
                }
            }
            return new Bad(null, "SOCKS5 greeting without the no-authentication method");
        }
        return httpConnect(in, at);
    }

    private static Step socksCommand(ByteBuf in, int at) {
        if (in.readableBytes() < 5) {
            return new More();
        }
        if (in.getByte(at) != SOCKS5 || in.getByte(at + 1) != 1 || in.getByte(at + 2) != 0) {
            return new Bad(Protocol.SOCKS5, "SOCKS5 command other than CONNECT");
        }
        int type = in.getUnsignedByte(at + 3);
        int addressLength = switch (type) {
            case 1 -> 4;
            case 4 -> 16;
            case 3 -> 1 + in.getUnsignedByte(at + 4);
            default -> -1;
        };
        if (addressLength < 0) {
            return new Bad(Protocol.SOCKS5, "SOCKS5 address type " + type);
        }
        int length = 4 + addressLength + 2;
        if (in.readableBytes() < length) {
            return new More();
        }
        int port = in.getUnsignedShort(at + 4 + addressLength);
        InetAddress address;
        try {
            if (type == 3) {
                address = literal(in.toString(at + 5, addressLength - 1, StandardCharsets.US_ASCII));
            } else {
                byte[] raw = new byte[addressLength];
                in.getBytes(at + 4, raw);
                address = InetAddress.getByAddress(raw);
            }
        } catch (IllegalArgumentException | java.net.UnknownHostException e) {
            return new Bad(Protocol.SOCKS5, "SOCKS5 target is not an IP address");
        }
        return new Connect(Protocol.SOCKS5, new InetSocketAddress(address, port), length);
    }

    private static Step httpConnect(ByteBuf in, int at) {
        int end = -1;
        for (int i = at; i + 3 < in.writerIndex(); i++) {
            if (in.getByte(i) == '\r' && in.getByte(i + 1) == '\n' && in.getByte(i + 2) == '\r'
                    && in.getByte(i + 3) == '\n') {
                end = i + 4;
                break;
            }
        }
        if (end < 0) {
            return new More();
        }
        String head = in.toString(at, end - at, StandardCharsets.ISO_8859_1);
        String[] line = head.substring(0, head.indexOf("\r\n")).split(" ", -1);
        if (line.length != 3 || !line[0].equals("CONNECT") || !line[2].startsWith("HTTP/1.")) {
            return new Bad(Protocol.HTTP, "not an HTTP CONNECT: " + printable(line[0]));
        }
        String authority = line[1];
        int colon = authority.lastIndexOf(':');
        try {
            String host = authority.substring(0, colon);
            if (host.startsWith("[") && host.endsWith("]")) {
                host = host.substring(1, host.length() - 1);
            }
            int port = Integer.parseInt(authority.substring(colon + 1));
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("port");
            }
            return new Connect(Protocol.HTTP, new InetSocketAddress(literal(host), port), end - at);
        } catch (IllegalArgumentException | IndexOutOfBoundsException e) {
            return new Bad(Protocol.HTTP, "CONNECT target is not ip:port: " + printable(authority));
        }
    }

    private static InetAddress literal(String host) {
        return InetAddress.ofLiteral(host);
    }

    private static String printable(String s) {
        String cut = s.length() > 64 ? s.substring(0, 64) + "..." : s;
        return cut.replaceAll("[^\\x20-\\x7e]", "?");
    }

    /** SOCKS5: "no authentication" chosen. */
    static ByteBuf socksMethodAccepted() {
        return Unpooled.wrappedBuffer(new byte[] {SOCKS5, NO_AUTH});
    }

    /** The answer that opens the tunnel. */
    static ByteBuf granted(Protocol p) {
        return p == Protocol.HTTP
                ? Unpooled.copiedBuffer("HTTP/1.1 200 Connection established\r\n\r\n", StandardCharsets.US_ASCII)
                : socksReply((byte) 0);
    }

    /** The answer that refuses; the caller closes after it. */
    static ByteBuf refusal(Protocol p, Refusal why) {
        if (p == null) {
            return Unpooled.EMPTY_BUFFER;
        }
        return p == Protocol.HTTP ? Unpooled.copiedBuffer("HTTP/1.1 " + why.httpStatus
                + "\r\ncontent-length: 0\r\nconnection: close\r\n\r\n", StandardCharsets.US_ASCII) : socksReply(why.socksReply);
    }

    private static ByteBuf socksReply(byte code) {
        // Bound address 0.0.0.0:0: the client has no use for ours.
        return Unpooled.wrappedBuffer(new byte[] {SOCKS5, code, 0, 1, 0, 0, 0, 0, 0, 0});
    }
}
