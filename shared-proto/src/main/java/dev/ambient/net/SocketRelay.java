package dev.ambient.net;

import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Plain TCP to plain TCP, for destinations outside the mesh: half-close carried across (a FIN on
 * one side shuts the other's output) and backpressure by pausing the reader of a side whose peer
 * is not writable. Both channels must carry {@link PendingReads} from their creation; this
 * replays what they held and turns reading on.
 */
public final class SocketRelay {

    /** @param aToB bytes read from a and written to b */
    public record Result(long aToB, long bToA, boolean clean, String reason) {
    }

    private final Channel a;
    private final Channel b;
    private final CompletableFuture<Result> done = new CompletableFuture<>();
    private final AtomicBoolean finished = new AtomicBoolean();
    private volatile long aToB;
    private volatile long bToA;
    private volatile boolean aEnded;
    private volatile boolean bEnded;

    private SocketRelay(Channel a, Channel b) {
        this.a = a;
        this.b = b;
    }

    public static CompletableFuture<Result> start(Channel a, Channel b) {
        SocketRelay r = new SocketRelay(a, b);
        r.attach(a, r.new Side(a, b, true));
        r.attach(b, r.new Side(b, a, false));
        return r.done;
    }

    private void attach(Channel ch, Side side) {
        ch.eventLoop().execute(() -> {
            ch.pipeline().addLast("socket-relay", side);
            PendingReads.release(ch);
            if (ch.isActive()) {
                ch.config().setAutoRead(true);
            } else {
                finish(false, "closed before relay");
            }
        });
    }

    /** Completes once both channels are closed: a relay's end (one side may outlive the other while its last bytes go out). */
    public static Future<Void> bothClosed(Channel a, Channel b) {
        Promise<Void> both = a.eventLoop().newPromise();
        AtomicInteger open = new AtomicInteger(2);
        ChannelFutureListener closed = f -> {
            if (open.decrementAndGet() == 0) {
                both.trySuccess(null);
            }
        };
        a.closeFuture().addListener(closed);
        b.closeFuture().addListener(closed);
        return both;
    }

    /**
     * Runs an operation on a channel's own event loop. Netty queues a plain write() from another
     * thread differently from writeAndFlush() and close(), so cross-thread operations can overtake
     * each other (data lost behind a shutdown); funnelling ours through execute() keeps their order.
     */
    public static void onLoop(Channel ch, Runnable op) {
        if (ch.eventLoop().inEventLoop()) {
            op.run();
        } else {
            try {
                ch.eventLoop().execute(op);
            } catch (java.util.concurrent.RejectedExecutionException shuttingDown) {
                // The process is stopping and the channel goes with its loop.
            }
        }
    }

    private void finish(boolean clean, String reason) {
        if (finished.compareAndSet(false, true)) {
            if (!clean) {
                for (Channel c : new Channel[] {a, b}) {
                    if (c.isOpen()) {
                        c.config().setOption(ChannelOption.SO_LINGER, 0);
                        c.close();
                    }
                }
            }
            done.complete(new Result(aToB, bToA, clean, reason));
        }
    }

    private final class Side extends ChannelInboundHandlerAdapter {
        private final Channel self;
        private final Channel peer;
        private final boolean isA;

        Side(Channel self, Channel peer, boolean isA) {
            this.self = self;
            this.peer = peer;
            this.isA = isA;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            io.netty.buffer.ByteBuf buf = (io.netty.buffer.ByteBuf) msg;
            if (isA) {
                aToB += buf.readableBytes();
            } else {
                bToA += buf.readableBytes();
            }
            onLoop(peer, () -> peer.write(buf));
            if (!peer.isWritable()) {
                self.config().setAutoRead(false);
            }
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            onLoop(peer, peer::flush);
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) {
            if (self.isWritable()) {
                peer.config().setAutoRead(true);
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof ChannelInputShutdownEvent) {
                if (isA) {
                    aEnded = true;
                } else {
                    bEnded = true;
                }
                onLoop(peer, () -> peer.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(f -> {
                    if (f.isSuccess() && peer instanceof DuplexChannel d) {
                        d.shutdownOutput();
                    }
                }));
                if (aEnded && bEnded) {
                    // Both directions are done; each socket closes after what was queued for it.
                    onLoop(a, () -> a.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE));
                    onLoop(b, () -> b.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE));
                    finish(true, "closed");
                }
            } else {
                ctx.fireUserEventTriggered(evt);
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            finish(aEnded && bEnded, aEnded && bEnded ? "closed" : "connection closed without FIN");
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            finish(false, "tcp error: " + cause.getMessage());
        }
    }
}
