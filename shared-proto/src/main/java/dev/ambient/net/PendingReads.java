package dev.ambient.net;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2FrameStream;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http2.Http2Stream;
import io.netty.handler.codec.http2.Http2StreamFrame;
import io.netty.util.ReferenceCountUtil;
import java.util.ArrayDeque;

/**
 * Holds what a channel reads before its tunnel is ready (early data, an early FIN or reset), so
 * nothing is lost while a CONNECT is answered or an upstream is dialled. Even with auto-read off,
 * epoll reads at accept time and a parent HTTP/2 read delivers a whole batch of frames, so this
 * must exist; it is bounded, and a peer that pushes past the bound is cut off. Whoever installs it
 * turns auto-read off; the relay turns it back on. The channel's close is held too and reaches the
 * consumer once, after everything read before it (the holder is the last handler until the
 * consumer is added, so nothing else waits for it).
 */
public final class PendingReads extends ChannelInboundHandlerAdapter {

    public static final String NAME = "pending-reads";

    private final ArrayDeque<Object> held = new ArrayDeque<>();
    private final long maxBytes;
    private long bytes;
    private boolean inactive;

    public PendingReads(long maxBytes) {
        this.maxBytes = maxBytes;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        bytes += switch (msg) {
            case io.netty.buffer.ByteBuf b -> b.readableBytes();
            case Http2DataFrame f -> f.content().readableBytes();
            default -> 0;
        };
        held.add(msg);
        if (bytes > maxBytes) {
            ctx.close();
        }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        // Swallowed: the relay flushes when it replays.
    }

    /**
     * A peer's reset held here, replayed in place of {@code frame}, with what the connection knew when
     * it arrived: whether the peer had already ended its side (its END_STREAM read by the connection,
     * the stream half-closed by it). That is lost by the replay: the reset closes the stream, and the
     * END_STREAM may still sit, unread, in the stream's queue behind it. {@code dev.ambient.hbone.PeerReset}
     * judges by it.
     */
    public record HeldReset(Http2ResetFrame frame, boolean peerEndedFirst) implements Http2ResetFrame {

        static HeldReset of(Http2ResetFrame reset) {
            Http2FrameStream stream = reset.stream();
            return new HeldReset(reset, stream != null && stream.state() == Http2Stream.State.HALF_CLOSED_REMOTE);
        }

        @Override
        public long errorCode() {
            return frame.errorCode();
        }

        @Override
        public String name() {
            return frame.name();
        }

        @Override
        public Http2FrameStream stream() {
            return frame.stream();
        }

        @Override
        public Http2StreamFrame stream(Http2FrameStream stream) {
            frame.stream(stream);
            return this;
        }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof Http2ResetFrame reset) {
            held.add(reset instanceof HeldReset ? reset : HeldReset.of(reset));
        } else if (evt instanceof ChannelInputShutdownEvent) {
            held.add(evt);
        } else {
            ctx.fireUserEventTriggered(evt);
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        // Held behind the reads, like a FIN: a consumer told "closed" ahead of data it has not seen
        // yet aborts and loses it (a stream that drains its queue during the replay closes at
        // once, while the last frames still sit here). Passed on once, after the last held read.
        inactive = true;
    }

    /**
     * Installs a holder on a fresh TCP channel before anything reads it: auto-read off, and
     * half-closure on, since a FIN read without it would close the whole socket.
     */
    public static void install(io.netty.channel.Channel tcp, long maxBytes) {
        tcp.config().setOption(io.netty.channel.ChannelOption.ALLOW_HALF_CLOSURE, true);
        tcp.config().setAutoRead(false);
        tcp.pipeline().addFirst(NAME, new PendingReads(maxBytes));
    }

    /**
     * On the channel's event loop, after the consuming handler was added: replays what was held to
     * it and removes the holder. Returns false if there was no holder.
     */
    public static boolean release(io.netty.channel.Channel ch) {
        PendingReads pending = (PendingReads) ch.pipeline().get(NAME);
        if (pending == null) {
            return false;
        }
        pending.handOver(ch.pipeline().context(NAME));
        return true;
    }

    private void handOver(ChannelHandlerContext ctx) {
        // The consumer's callbacks may make the channel read more at once (a stream resumed from
        // channelReadComplete drains its queue synchronously): that arrives here, behind what is
        // held, and is replayed in turn; the holder leaves only when nothing is left, never with
        // data in it (it used to drop such frames, END_STREAM among them).
        boolean any = false;
        for (;;) {
            Object next = held.poll();
            if (next == null) {
                if (!any) {
                    break;
                }
                any = false;
                ctx.fireChannelReadComplete();
            } else if (next instanceof ChannelInputShutdownEvent || next instanceof Http2ResetFrame) {
                if (any) {
                    ctx.fireChannelReadComplete();
                    any = false;
                }
                ctx.fireUserEventTriggered(next);
            } else {
                ctx.fireChannelRead(next);
                any = true;
            }
        }
        if (inactive) {
            ctx.fireChannelInactive();
        }
        ctx.pipeline().remove(this);
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        Object m;
        while ((m = held.poll()) != null) {
            ReferenceCountUtil.release(m);
        }
    }
}
