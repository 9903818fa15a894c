package dev.ambient.hbone;

import dev.ambient.identity.SpiffeId;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2GoAwayFrame;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http2.Http2SettingsFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.handler.codec.http2.Http2Error;
import dev.ambient.net.PendingReads;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One mutual-TLS HTTP/2 connection to an HBONE server, carrying many CONNECT streams. Thread-safe:
 * streams may be opened from any thread; counters are kept here rather than read from the codec,
 * which belongs to the connection's event loop.
 */
public final class HboneClientConnection {

    private final Channel channel;
    private final SpiffeId peer;
    private final AtomicInteger activeStreams = new AtomicInteger();
    private volatile int maxStreams;
    private volatile boolean goingAway;
    /** What the server said when it sent GOAWAY with an error (e.g. too many connections of our identity). */
    private volatile String goAwayReason;
    private boolean settingsSeen; // event loop only
    private volatile long idleSinceNanos = System.nanoTime();

    private final Promise<HboneClientConnection> ready;
    private final java.net.InetSocketAddress server;
    private volatile Throwable failure;

    HboneClientConnection(Channel channel, SpiffeId peer, HboneSettings settings,
            Promise<HboneClientConnection> ready, java.net.InetSocketAddress server) {
        this.channel = channel;
        this.peer = peer;
        this.ready = ready;
        this.server = server;
        channel.closeFuture().addListener(f -> ready.tryFailure(new HboneException(HboneException.NO_RESPONSE,
                "server " + Authority.format(server) + " closed the connection before HTTP/2 SETTINGS"
                        + (failure == null ? "" : ": " + HboneServerInitializer.rootMessage(failure)))));
        // Until the server's SETTINGS arrive, assume the HTTP/2 minimum a server must allow.
        this.maxStreams = 100;
    }

    public SpiffeId peer() {
        return peer;
    }

    public Channel channel() {
        return channel;
    }

    public int activeStreams() {
        return activeStreams.get();
    }

    public int maxStreams() {
        return maxStreams;
    }

    /** Open, not told to go away, and below the server's stream limit. */
    public boolean hasCapacity() {
        return channel.isActive() && !goingAway && activeStreams.get() < maxStreams;
    }

    public boolean isUsable() {
        return channel.isActive() && !goingAway;
    }

    /** Since when no stream has been open (System.nanoTime), or -1 while streams are open. */
    public long idleSinceNanos() {
        return activeStreams.get() > 0 ? -1 : idleSinceNanos;
    }

    public void close() {
        channel.close();
    }

    public Future<Void> closeFuture() {
        return channel.closeFuture();
    }

    /**
     * Opens a CONNECT stream. Completes with the stream once the server answered 200 (data the
     * server sent right after is held for {@link TunnelRelay}); fails with {@link HboneException}
     * carrying the status otherwise.
     */
    public Future<Http2StreamChannel> open(Http2Headers connect) {
        activeStreams.incrementAndGet();
        return openReserved(connect);
    }

    /**
     * Counts {@code streams} as open before they are: a pool promising streams to a connection it
     * is still dialling reserves them, so no other caller takes their places meanwhile.
     */
    public void reserve(int streams) {
        activeStreams.addAndGet(streams);
    }

    /** Opens a stream already counted by {@link #reserve}. */
    public Future<Http2StreamChannel> openReserved(Http2Headers connect) {
        Promise<Http2StreamChannel> promise = channel.eventLoop().newPromise();
        new Http2StreamChannelBootstrap(channel).handler(new ChannelInboundHandlerAdapter() {
            @Override
            public void handlerAdded(ChannelHandlerContext ctx) {
                ctx.channel().closeFuture().addListener(f -> streamClosed());
            }
        }).open().addListener(f -> {
            if (!f.isSuccess()) {
                promise.tryFailure(new HboneException(HboneException.NO_RESPONSE,
                        "cannot open stream: " + why(HboneServerInitializer.rootMessage(f.cause()))));
                return;
            }
            Http2StreamChannel stream = (Http2StreamChannel) f.getNow();
            stream.pipeline().addLast(new ResponseReader(promise, this));
            stream.pipeline().addLast(PendingReads.NAME, new PendingReads(4L << 20));
            stream.writeAndFlush(new DefaultHttp2HeadersFrame(connect, false)).addListener(w -> {
                if (!w.isSuccess()) {
                    promise.tryFailure(new HboneException(HboneException.NO_RESPONSE,
                            "cannot send CONNECT: " + why(HboneServerInitializer.rootMessage(w.cause()))));
                    stream.close();
                }
            });
        });
        return promise;
    }

    private void streamClosed() {
        if (activeStreams.decrementAndGet() == 0) {
            idleSinceNanos = System.nanoTime();
        }
    }

    /** Watches the connection's SETTINGS and GOAWAY, for the pool. */
    ChannelHandler settingsWatcher() {
        return new ChannelInboundHandlerAdapter() {
            @Override
            public void channelRead(ChannelHandlerContext ctx, Object msg) {
                if (msg instanceof Http2SettingsFrame s) {
                    Long max = s.settings().maxConcurrentStreams();
                    if (max != null) {
                        maxStreams = (int) Math.min(Integer.MAX_VALUE, max);
                    } else if (!settingsSeen) {
                        maxStreams = Integer.MAX_VALUE; // absent in the first SETTINGS: unlimited (RFC 9113 6.5.2)
                    }
                    settingsSeen = true;
                    ready.trySuccess(HboneClientConnection.this);
                } else if (msg instanceof Http2GoAwayFrame goAway) {
                    goingAway = true;
                    if (goAway.errorCode() != Http2Error.NO_ERROR.code()) {
                        Http2Error error = Http2Error.valueOf(goAway.errorCode());
                        goAwayReason = "server sent GOAWAY(" + (error == null ? goAway.errorCode() : error) + "): "
                                + goAway.content().toString(java.nio.charset.StandardCharsets.UTF_8);
                    }
                }
                ctx.fireChannelRead(msg);
            }
        };
    }

    /** Sits before the HTTP/2 codec (which swallows errors) to keep why the connection failed. */
    ChannelHandler failureRecorder() {
        return new ChannelInboundHandlerAdapter() {
            @Override
            public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                // e.g. the server's TLS alert refusing our certificate; reported if not yet ready.
                failure = cause;
                ctx.fireExceptionCaught(cause);
            }
        };
    }

    /** {@code what} went wrong, and why the server told us to go away, if it did. */
    private String why(String what) {
        String reason = goAwayReason;
        return reason == null ? what : what + "; " + reason;
    }

    /** Waits for the response HEADERS of a CONNECT, then steps aside. */
    private static final class ResponseReader extends ChannelInboundHandlerAdapter {
        private final Promise<Http2StreamChannel> promise;
        private final HboneClientConnection connection;

        ResponseReader(Promise<Http2StreamChannel> promise, HboneClientConnection connection) {
            this.promise = promise;
            this.connection = connection;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (!(msg instanceof Http2HeadersFrame headers)) {
                if (promise.isDone()) {
                    ctx.fireChannelRead(msg);
                } else {
                    ReferenceCountUtil.release(msg);
                }
                return;
            }
            CharSequence status = headers.headers().status();
            ctx.pipeline().remove(this);
            if (status != null && "200".contentEquals(status)) {
                // Hold what follows the 200 until the relay starts.
                ctx.channel().config().setAutoRead(false);
                promise.trySuccess((Http2StreamChannel) ctx.channel());
            } else {
                int code = parseStatus(status);
                promise.tryFailure(new HboneException(code, "CONNECT answered " + status));
                ctx.close();
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof Http2ResetFrame reset && !promise.isDone()) {
                promise.tryFailure(new HboneException(HboneException.NO_RESPONSE,
                        "stream reset before response (" + Http2Error.valueOf(reset.errorCode()) + ")"));
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            promise.tryFailure(new HboneException(HboneException.NO_RESPONSE,
                    connection.why("stream closed before response")));
            ctx.fireChannelInactive();
        }

        private static int parseStatus(CharSequence status) {
            try {
                return status == null ? HboneException.NO_RESPONSE : Integer.parseInt(status.toString());
            } catch (NumberFormatException e) {
                return HboneException.NO_RESPONSE;
            }
        }
    }
}
