package dev.ambient.waypoint.proxy;

import dev.ambient.hbone.FinishingTunnels;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * What the client of a tunnel sniffed as TCP sends while the waypoint dials its endpoint (the 200
 * went out before the sniff, so the client sends at once). Held here and owned by the dispatcher,
 * not by the stream: a client may end cleanly during the dial, END_STREAM then RST_STREAM(NO_ERROR)
 * often in the same read as its data, and Netty then closes the stream and removes its handlers;
 * what it sent must still be delivered: {@link TcpSplice} takes it when it starts, through the
 * pipeline if the stream is open, else from here, and then sends END_STREAM to the endpoint (whose
 * answer is dropped until it ends its side). The holder stays until then, so no clean reset between
 * the dial and the splice loses the bytes either. Bounded twice: at most
 * {@code maxBytes} for the tunnel (more closes the stream), and from that reset on the tunnel counts
 * among its connection's finishing tunnels ({@link FinishingTunnels}, as many as the connection may
 * have streams): beyond them it is aborted and its bytes let go. Event loop of the stream only.
 */
final class SniffedTcpHold extends ChannelInboundHandlerAdapter {

    static final String NAME = "sniffed-tcp-hold";

    private final ArrayDeque<ByteBuf> bytes = new ArrayDeque<>();
    private final long maxBytes;
    /** The tunnel's end (both sides closed): its place among the finishing tunnels is freed then. */
    private final Future<?> done;
    private final Http2StreamChannel stream;
    private long held;
    private boolean inputEnded;
    /** END_STREAM then RST_STREAM(NO_ERROR), admitted among the connection's finishing tunnels. */
    private boolean letGo;
    /** Beyond the finishing bound, or past maxBytes: aborted. */
    private boolean aborted;
    private String abortReason;
    /** Set on release: the stream had closed after a clean end; read by the access log's thread. */
    private volatile boolean endedDuringDial;

    SniffedTcpHold(Http2StreamChannel stream, long maxBytes, Future<?> done) {
        this.stream = stream;
        this.maxBytes = maxBytes;
        this.done = done;
    }

    /**
     * When the dial ends: whether the client is gone, aborted (beyond its connection's bound, too
     * much sent) or closed without a clean end; else the tunnel is spliced, what was held first.
     */
    boolean gone() {
        return aborted || !letGo && !stream.isActive();
    }

    /** Why the client counts as gone, for the access log. */
    String goneReason() {
        return abortReason != null ? abortReason : "the client left while its endpoint was dialled";
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        ByteBuf buf = (ByteBuf) msg;
        if (aborted) {
            buf.release();
            return;
        }
        held += buf.readableBytes();
        bytes.add(buf);
        if (held > maxBytes) {
            abort("the client sent more than " + maxBytes + " bytes while its endpoint was dialled");
            ctx.close();
        }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        // Swallowed: whoever takes the bytes flushes.
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof ChannelInputShutdownEvent) {
            inputEnded = true;
        } else if (evt == StreamBytes.ResetAfterEnd.EVENT) {
            // The client let go of its stream: counted from now on, so that a connection cannot
            // leave any number of uploads behind it while their endpoints are dialled. Admitted
            // here, it is not admitted again by the splice.
            if (FinishingTunnels.admit(stream, done)) {
                letGo = true;
            } else {
                abort("the client ended during the dial, beyond its connection's bound of finishing tunnels");
                ctx.close();
            }
        } else {
            ctx.fireUserEventTriggered(evt);
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        // Not passed on: the dispatcher looks at the stream when the dial ends.
    }

    private void abort(String reason) {
        aborted = true;
        abortReason = reason;
        discard();
    }

    /**
     * When the splice's handler on {@code stream} is in place, on its loop. Stream open: what was
     * held (and END_STREAM if read) goes to that handler through the pipeline, and the holder leaves;
     * returns nothing. Stream closed after its client ended cleanly: returns what it sent, for the
     * splice to pass on as read, then the end ({@link #endedDuringDial()}). Otherwise: nothing.
     */
    List<ByteBuf> release(Channel stream) {
        ChannelHandlerContext ctx = stream.pipeline().context(this);
        if (ctx != null) {
            for (ByteBuf b; (b = bytes.poll()) != null;) {
                ctx.fireChannelRead(b);
            }
            ctx.fireChannelReadComplete();
            if (inputEnded) {
                ctx.fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
            }
            ctx.pipeline().remove(this);
            return List.of();
        }
        if (!letGo || aborted) {
            discard();
            return List.of();
        }
        endedDuringDial = true;
        List<ByteBuf> upload = new ArrayList<>(bytes);
        bytes.clear();
        return upload;
    }

    /** The client had ended cleanly and its stream was closed when the splice started. */
    boolean endedDuringDial() {
        return endedDuringDial;
    }

    /** Lets go of what is held; once the dial ends, the dispatcher calls it for every outcome but a delivery. */
    void discard() {
        for (ByteBuf b; (b = bytes.poll()) != null;) {
            ReferenceCountUtil.release(b);
        }
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        // The stream closed: kept for delivery only if its client ended cleanly and was admitted.
        if (!letGo || aborted) {
            discard();
        }
    }
}
