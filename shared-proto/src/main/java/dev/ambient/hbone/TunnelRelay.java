package dev.ambient.hbone;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import dev.ambient.net.PendingReads;
import dev.ambient.net.SocketRelay;
import io.netty.util.ReferenceCountUtil;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Moves bytes both ways between a CONNECT stream and a plain TCP connection, with half-close
 * (a FIN becomes END_STREAM and back) and backpressure: a side whose peer cannot take more stops
 * reading, so the HTTP/2 window or the TCP window pushes back on the sender, and nothing is
 * buffered beyond one read and the channels' write watermarks.
 */
public final class TunnelRelay {

    /**
     * @param intoTunnel bytes from TCP sent into the tunnel
     * @param outOfTunnel bytes from the tunnel written to TCP
     * @param clean both directions ended with FIN / END_STREAM
     * @param reason how it ended, for the access log
     */
    public record Result(long intoTunnel, long outOfTunnel, boolean clean, String reason) {
    }

    private final Http2StreamChannel stream;
    private final Channel tcp;
    private final RelayObserver observer;
    private final CompletableFuture<Result> done = new CompletableFuture<>();
    private final AtomicBoolean finished = new AtomicBoolean();
    private volatile long intoTunnel;
    private volatile long outOfTunnel;
    private volatile boolean tcpInputEnded;
    private volatile boolean streamInputEnded;

    private TunnelRelay(Http2StreamChannel stream, Channel tcp, RelayObserver observer) {
        this.stream = stream;
        this.tcp = tcp;
        this.observer = observer;
    }

    /**
     * Starts relaying. Both channels must carry a {@link PendingReads} (the HBONE client and server
     * install one on the stream; {@link #holdReads(Channel)} installs one on a TCP channel), so that
     * data read before this call is replayed first.
     */
    public static CompletableFuture<Result> start(Http2StreamChannel stream, Channel tcp, RelayObserver observer) {
        TunnelRelay relay = new TunnelRelay(stream, tcp, observer);
        // Netty's 32/64 KiB default would pause the TCP reader every 64 KiB against a MiB window.
        stream.config().setWriteBufferWaterMark(new io.netty.channel.WriteBufferWaterMark(1 << 20, 4 << 20));
        relay.attach(tcp, relay.new TcpSide());
        relay.attach(stream, relay.new StreamSide());
        return relay.done;
    }

    /** Call on a fresh TCP channel (accepted or dialled) before anything reads it. */
    public static void holdReads(Channel tcp) {
        PendingReads.install(tcp, 4L << 20);
    }

    private void attach(Channel ch, ChannelInboundHandlerAdapter side) {
        ch.eventLoop().execute(() -> {
            ch.pipeline().addLast("hbone-relay", side);
            if (!PendingReads.release(ch) && !ch.isActive()) {
                finish(false, (ch == tcp ? "tcp" : "stream") + " closed before relay");
            }
            if (ch.isActive()) {
                StreamReading.set(ch, true);
            }
        });
    }

    private void finish(boolean clean, String reason) {
        if (finished.compareAndSet(false, true)) {
            if (!clean) {
                abortTcp();
                stream.close();
            }
            done.complete(new Result(intoTunnel, outOfTunnel, clean, reason));
        }
    }

    private void abortTcp() {
        if (tcp.isOpen()) {
            // An error on one side is shown to the other as a reset, not as a clean FIN.
            tcp.config().setOption(ChannelOption.SO_LINGER, 0);
            tcp.close();
        }
    }

    private void maybeCompleteCleanly() {
        if (tcpInputEnded && streamInputEnded) {
            closeTcpAfterItsLastBytes();
            finish(true, "closed");
        }
    }

    /**
     * Closes the socket once its last bytes are flushed. Always queued, never inline: the stream's
     * loop may have handed the TCP loop writes (the peer's last data) that are still waiting to
     * run, and closing ahead of them would lose them.
     */
    private void closeTcpAfterItsLastBytes() {
        try {
            tcp.eventLoop().execute(() -> tcp.writeAndFlush(Unpooled.EMPTY_BUFFER)
                    .addListener(ChannelFutureListener.CLOSE));
        } catch (java.util.concurrent.RejectedExecutionException shuttingDown) {
            // The process is stopping and the channel goes with its loop.
        }
    }

    /** Handler on the plain TCP channel. */
    private final class TcpSide extends ChannelInboundHandlerAdapter {

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf buf = (ByteBuf) msg;
            int n = buf.readableBytes();
            if (n == 0) {
                buf.release();
                return;
            }
            intoTunnel += n;
            observer.intoTunnel(n);
            SocketRelay.onLoop(stream, () -> stream.write(new DefaultHttp2DataFrame(buf)));
            if (!stream.isWritable()) {
                tcp.config().setAutoRead(false);
                // On another loop the stream may have drained between the check and the pause, and
                // its writability event found reading still on: look again, or nobody resumes it.
                if (stream.isWritable()) {
                    tcp.config().setAutoRead(true);
                }
            }
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            SocketRelay.onLoop(stream, stream::flush);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof ChannelInputShutdownEvent && !tcpInputEnded) {
                tcpInputEnded = true;
                SocketRelay.onLoop(stream, () -> stream.writeAndFlush(new DefaultHttp2DataFrame(true)));
                maybeCompleteCleanly();
            } else {
                ctx.fireUserEventTriggered(evt);
            }
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) {
            if (tcp.isWritable()) {
                StreamReading.set(stream, true);
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            if (tcpInputEnded && streamInputEnded) {
                // Both halves were shut (our FIN after END_STREAM, theirs before): the socket closed itself.
                maybeCompleteCleanly();
            } else {
                finish(false, "connection closed by " + (tcpInputEnded ? "local side" : "local side without FIN"));
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            finish(false, "tcp error: " + cause.getMessage());
        }
    }

    /** Handler on the CONNECT stream. */
    private final class StreamSide extends ChannelInboundHandlerAdapter {

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            try {
                if (msg instanceof Http2DataFrame data) {
                    int n = data.content().readableBytes();
                    if (n > 0) {
                        outOfTunnel += n;
                        observer.outOfTunnel(n);
                        var content = data.content().retain();
                        SocketRelay.onLoop(tcp, () -> tcp.write(content));
                        if (!tcp.isWritable()) {
                            stream.config().setAutoRead(false);
                            if (tcp.isWritable()) { // drained meanwhile on its own loop: see the TCP side
                                StreamReading.set(stream, true);
                            }
                        }
                    }
                    if (data.isEndStream()) {
                        endOfStream();
                    }
                } else if (msg instanceof Http2HeadersFrame trailers && trailers.isEndStream()) {
                    endOfStream();
                }
            } finally {
                ReferenceCountUtil.release(msg);
            }
        }

        private void endOfStream() {
            if (streamInputEnded) {
                return;
            }
            streamInputEnded = true;
            SocketRelay.onLoop(tcp, () -> tcp.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(f -> {
                if (f.isSuccess() && tcp instanceof DuplexChannel duplex) {
                    duplex.shutdownOutput();
                }
            }));
            maybeCompleteCleanly();
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            SocketRelay.onLoop(tcp, tcp::flush);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof Http2ResetFrame reset) {
                // RST_STREAM(NO_ERROR) after END_STREAM is a clean end: the stream closes once the
                // frames queued ahead of it are read, and channelInactive decides then. One that came
                // before we were attached was held, and is judged by the stream's state on arrival.
                if (!PeerReset.endsCleanly(reset, streamInputEnded)) {
                    finish(false, "stream reset by peer (" + Http2Error.valueOf(reset.errorCode()) + ")");
                } else if (!FinishingTunnels.admit(stream, SocketRelay.bothClosed(stream, tcp))) {
                    // The reset freed the stream's place and window while we hold what is undelivered.
                    finish(false, "stream reset by peer after END_STREAM, with as many tunnels of its connection "
                            + "still finishing as it may have streams: aborted");
                }
            } else {
                ctx.fireUserEventTriggered(evt);
            }
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) {
            if (stream.isWritable()) {
                tcp.config().setAutoRead(true);
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            if (tcpInputEnded && streamInputEnded) {
                maybeCompleteCleanly();
            } else if (streamInputEnded) {
                // The peer ended its side and then closed the stream, with at most a NO_ERROR reset
                // (any other one finished us already): a server that answered and closed. Its
                // answer and FIN are queued for the socket; close after them, as the server's own
                // close would, not with a reset that throws them away.
                closeTcpAfterItsLastBytes();
                finish(true, "closed by peer after END_STREAM");
            } else {
                finish(false, "tunnel closed before both sides finished");
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            finish(false, "stream error: " + cause.getMessage());
        }
    }
}
