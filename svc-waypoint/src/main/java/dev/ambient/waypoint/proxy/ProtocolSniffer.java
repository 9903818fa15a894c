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
 * Decides what a tunnel carries from its first bytes: the HTTP/2 connection preface (h2c, prior
 * knowledge), an HTTP/1.x request line, or anything else (forwarded as TCP). A server-first
 * protocol sends nothing at first: after the sniff timeout the tunnel is TCP. Holds at most the
 * length of the preface before deciding.
 */
public final class ProtocolSniffer extends ChannelInboundHandlerAdapter {

    public enum Protocol { HTTP1, HTTP2, TCP }

    private static final byte[] PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
    private static final String[] METHODS = {"GET ", "POST ", "PUT ", "DELETE ", "HEAD ", "OPTIONS ", "PATCH ",
            "TRACE ", "CONNECT "};

    private final Duration timeout;
    private final BiConsumer<ChannelHandlerContext, Protocol> decided;
    private ByteBuf held;
    private ScheduledFuture<?> timer;
    private boolean done;

    /** @param decided installs the protocol's handlers after this one; what was read is replayed to them */
    public ProtocolSniffer(Duration timeout, BiConsumer<ChannelHandlerContext, Protocol> decided) {
        this.timeout = timeout;
        this.decided = decided;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        timer = ctx.executor().schedule(() -> decide(ctx, Protocol.TCP), timeout.toMillis(), TimeUnit.MILLISECONDS);
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
        Protocol p = classify(held);
        if (p != null) {
            decide(ctx, p);
        }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (!done && evt instanceof ChannelInputShutdownEvent) {
            Protocol p = held == null ? Protocol.TCP : classifyFinal(held);
            decide(ctx, p);
        }
        ctx.fireUserEventTriggered(evt);
    }

    /** Null while the bytes so far could still be either. */
    static Protocol classify(ByteBuf b) {
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
        boolean couldBeMethod = false;
        for (String m : METHODS) {
            int len = Math.min(n, m.length());
            boolean same = true;
            for (int k = 0; k < len; k++) {
                if (b.getByte(i + k) != m.charAt(k)) {
                    same = false;
                    break;
                }
            }
            if (same) {
                if (n >= m.length()) {
                    return Protocol.HTTP1;
                }
                couldBeMethod = true;
            }
        }
        return couldBeMethod ? null : Protocol.TCP;
    }

    private static Protocol classifyFinal(ByteBuf b) {
        Protocol p = classify(b);
        return p == null ? Protocol.TCP : p;
    }

    private void decide(ChannelHandlerContext ctx, Protocol p) {
        if (done) {
            return;
        }
        done = true;
        timer.cancel(false);
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
