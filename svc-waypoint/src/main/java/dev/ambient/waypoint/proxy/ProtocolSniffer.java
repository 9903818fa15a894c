package dev.ambient.waypoint.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.util.concurrent.ScheduledFuture;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;

/**
 * Decides what a tunnel carries from its first bytes. On a port declared HTTP only the version is
 * open: the HTTP/2 connection preface (h2c, prior knowledge) or else HTTP/1.1 (whose codec answers
 * 400 to what is not HTTP), and there is no timeout (the HTTP timeouts apply). On a port that
 * declares nothing, an HTTP/1.x request line (after empty lines, as HTTP/1.1 allows) or the
 * preface is HTTP, anything else is TCP, and so is silence for the sniff timeout (a server-first
 * protocol). Holds at most a few dozen bytes before deciding.
 */
public final class ProtocolSniffer extends ChannelInboundHandlerAdapter {

    public enum Protocol { HTTP1, HTTP2, TCP }

    private static final byte[] PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
    /** Empty lines before a request line that are skipped as HTTP/1.1 says (RFC 9112 2.2); more is not HTTP. */
    static final int MAX_LEADING_EMPTY_LINE_BYTES = 16;
    /** Longer than any method in use (the IANA registry's longest is 16). */
    static final int MAX_METHOD_LENGTH = 24;

    private final boolean mayBeTcp;
    private final Duration timeout;
    private final BiConsumer<ChannelHandlerContext, Protocol> decided;
    private ByteBuf held;
    private ScheduledFuture<?> timer;
    private boolean done;

    /**
     * @param mayBeTcp false on a port declared HTTP: the outcome is HTTP/1.1 or HTTP/2, never TCP
     * @param timeout for an undeclared port, silence this long means TCP
     * @param decided installs the protocol's handlers after this one; what was read is replayed to them
     */
    public ProtocolSniffer(boolean mayBeTcp, Duration timeout, BiConsumer<ChannelHandlerContext, Protocol> decided) {
        this.mayBeTcp = mayBeTcp;
        this.timeout = timeout;
        this.decided = decided;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        if (mayBeTcp) {
            timer = ctx.executor().schedule(() -> decide(ctx, held == null ? Protocol.TCP : classifyFinal(held, true)),
                    timeout.toMillis(), TimeUnit.MILLISECONDS);
        }
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (done) {
            ctx.fireChannelRead(msg);
            return;
        }
        ByteBuf in = (ByteBuf) msg;
        if (held == null) {
            held = in;
        } else {
            held = ctx.alloc().compositeBuffer().addComponents(true, held, in);
        }
        Protocol p = classify(held, mayBeTcp);
        if (p != null) {
            decide(ctx, p);
        }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (!done && evt instanceof ChannelInputShutdownEvent) {
            decide(ctx, held == null ? (mayBeTcp ? Protocol.TCP : Protocol.HTTP1) : classifyFinal(held, mayBeTcp));
        }
        ctx.fireUserEventTriggered(evt);
    }

    /** Null while the bytes so far could still be either. */
    static Protocol classify(ByteBuf b, boolean mayBeTcp) {
        int n = b.readableBytes();
        int i = b.readerIndex();
        boolean prefacePrefix = true;
        for (int k = 0; k < Math.min(n, PREFACE.length); k++) {
            if (b.getByte(i + k) != PREFACE[k]) {
                prefacePrefix = false;
                break;
            }
        }
        if (prefacePrefix) {
            return n >= PREFACE.length ? Protocol.HTTP2 : null;
        }
        if (!mayBeTcp) {
            return Protocol.HTTP1;
        }
        int k = 0;
        while (k < n && k < MAX_LEADING_EMPTY_LINE_BYTES && isCrOrLf(b.getByte(i + k))) {
            k++;
        }
        if (k == MAX_LEADING_EMPTY_LINE_BYTES) {
            return Protocol.TCP;
        }
        // A request line starts with a method, a token, and a space.
        int method = 0;
        for (; k < n; k++, method++) {
            byte c = b.getByte(i + k);
            if (c == ' ') {
                return method > 0 ? Protocol.HTTP1 : Protocol.TCP;
            }
            if (!isTokenChar(c) || method >= MAX_METHOD_LENGTH) {
                return Protocol.TCP;
            }
        }
        return null;
    }

    private static Protocol classifyFinal(ByteBuf b, boolean mayBeTcp) {
        Protocol p = classify(b, mayBeTcp);
        return p != null ? p : mayBeTcp ? Protocol.TCP : Protocol.HTTP1;
    }

    private static boolean isCrOrLf(byte c) {
        return c == '\r' || c == '\n';
    }

    /** RFC 9110 tchar. */
    private static boolean isTokenChar(byte c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                || "!#$%&'*+-.^_`|~".indexOf(c) >= 0;
    }

    private void decide(ChannelHandlerContext ctx, Protocol p) {
        if (done) {
            return;
        }
        done = true;
        if (timer != null) {
            timer.cancel(false);
        }
        decided.accept(ctx, p);
        ByteBuf b = held;
        held = null;
        ctx.pipeline().remove(this);
        if (b != null) {
            ctx.fireChannelRead(b);
            ctx.fireChannelReadComplete();
        }
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        if (held != null) {
            held.release();
            held = null;
        }
        if (timer != null) {
            timer.cancel(false);
        }
    }
}
