package dev.ambient.waypoint.proxy;

import dev.ambient.net.PendingReads;
import dev.ambient.waypoint.http.WebSocketUpgrade;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoop;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpStatusClass;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2GoAwayFrame;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import io.netty.handler.codec.http2.HttpConversionUtil;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * One HTTP/2 connection (prior knowledge, h2c) to an endpoint inside a CONNECT stream; each call is
 * one of its streams, flow-controlled on its own. Calls that come while it connects wait for it (on
 * its loop, so in order). GOAWAY from the server or the tunnel's end retires it; it closes after
 * idling without streams. A WebSocket opening (the HTTP/1.1 form inside the waypoint) goes out as
 * an extended CONNECT (RFC 8441) and its {@code 200} comes back as a {@code 101}. Event loop only.
 */
final class Http2Upstream {

    private static final Logger LOG = Logger.getLogger(Http2Upstream.class);
    private static final String CODEC = "h2-to-http";
    private static final Http2Settings SETTINGS = Http2Settings.defaultSettings().pushEnabled(false)
            .initialWindowSize(1 << 20);

    private final UpstreamClient.Key key;
    private final Duration idleTimeout;
    private final Consumer<Channel> started;
    private final Runnable retired;
    private final ArrayDeque<Call> waiting = new ArrayDeque<>();
    private Channel tunnel; // null while connecting: a CONNECT stream, or a socket outside the mesh
    private UpstreamFailure failed;
    private boolean retiredAlready;
    private int activeStreams;
    private long idleSince = System.nanoTime();

    /**
     * @param started counts the connection and lets its bytes flow once its pipeline is in place
     * @param retired removes it from the pool (new calls open a new connection)
     */
    Http2Upstream(UpstreamClient.Key key, Duration idleTimeout, Consumer<Channel> started,
            Runnable retired) {
        this.key = key;
        this.idleTimeout = idleTimeout;
        this.started = started;
        this.retired = retired;
    }

    boolean usable() {
        return !retiredAlready && failed == null && (tunnel == null || tunnel.isActive());
    }

    void open(Future<Channel> connecting) {
        connecting.addListener(f -> {
            if (!f.isSuccess()) {
                failed = (UpstreamFailure) f.cause();
                retire();
            } else {
                tunnel = (Channel) f.getNow();
                if (tunnel instanceof Http2StreamChannel) {
                    tunnel.pipeline().addLast(StreamBytes.NAME, new StreamBytes());
                }
                tunnel.pipeline().addLast(Http2FrameCodecBuilder.forClient().initialSettings(SETTINGS).build());
                tunnel.pipeline().addLast(new Http2MultiplexHandler(new ChannelInboundHandlerAdapter()));
                tunnel.pipeline().addLast(new ChannelInboundHandlerAdapter() {
                    @Override
                    public void channelRead(ChannelHandlerContext ctx, Object msg) {
                        if (msg instanceof Http2GoAwayFrame) {
                            LOG.debugf("upstream %s: GOAWAY; new requests open a new connection", key.target());
                            retire();
                        }
                        ReferenceCountUtil.release(msg);
                    }
                });
                tunnel.closeFuture().addListener(x -> retire());
                started.accept(tunnel);
                scheduleIdleCheck();
            }
            for (Call c; (c = waiting.poll()) != null;) {
                openStream(c);
            }
        });
    }

    /** A call on a stream of this connection; never heard from before this returns. */
    UpstreamCall call(UpstreamCall.Listener listener) {
        Call call = new Call(listener, key.loop());
        if (tunnel == null && failed == null) {
            waiting.add(call);
        } else {
            key.loop().execute(() -> openStream(call));
        }
        return call;
    }

    private void openStream(Call call) {
        if (call.over) {
            return;
        }
        if (failed != null) {
            call.connectFailed(failed);
            return;
        }
        new Http2StreamChannelBootstrap(tunnel).handler(new ChannelInitializer<Http2StreamChannel>() {
            @Override
            protected void initChannel(Http2StreamChannel ch) {
                ch.pipeline().addLast(CODEC, new Http2StreamFrameToHttpObjectCodec(false));
                ch.pipeline().addLast(call.handler);
            }
        }).open().addListener((Future<Http2StreamChannel> f) -> {
            if (!f.isSuccess()) {
                // No stream, so no request left: as safe to retry as a failed dial.
                call.connectFailed(new UpstreamFailure(UpstreamFailure.Kind.CONNECT,
                        "HTTP/2 stream to " + key.target() + ": " + f.cause().getMessage()));
                return;
            }
            Http2StreamChannel stream = f.getNow();
            activeStreams++;
            stream.closeFuture().addListener(x -> {
                if (--activeStreams == 0) {
                    idleSince = System.nanoTime();
                }
            });
            call.attached(stream);
        });
    }

    private void scheduleIdleCheck() {
        key.loop().schedule(() -> {
            if (!tunnel.isActive()) {
                return;
            }
            if (activeStreams == 0 && System.nanoTime() - idleSince >= idleTimeout.toNanos()) {
                retire();
                tunnel.close();
            } else {
                scheduleIdleCheck();
            }
        }, idleTimeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** No new call uses this connection; streams open on it finish. */
    private void retire() {
        retiredAlready = true;
        retired.run();
    }

    void close() {
        if (tunnel != null) {
            tunnel.close();
        }
    }

    /** A call on one stream of the connection. */
    final class Call extends ChannelCall {
        final StreamHandler handler = new StreamHandler(this);
        /** The Sec-WebSocket-Key of a WebSocket opening sent as extended CONNECT, for the 101's accept; else null. */
        private String webSocketKey;
        private boolean upgraded;

        Call(UpstreamCall.Listener listener, EventLoop loop) {
            super(listener, loop);
        }

        @Override
        Object encode(HttpObject part) {
            if (part instanceof HttpRequest head) {
                String protocol = WebSocketUpgrade.requested(head.headers());
                if (protocol != null) {
                    // RFC 8441: CONNECT with :protocol, the path and scheme kept, no key, no Upgrade.
                    webSocketKey = head.headers().get(HttpHeaderNames.SEC_WEBSOCKET_KEY, "");
                    HttpRequest plain = new DefaultHttpRequest(head.protocolVersion(), head.method(), head.uri(),
                            head.headers().copy().set(HttpConversionUtil.ExtensionHeaderNames.SCHEME.text(), "http"));
                    Http2Headers h = HttpConversionUtil.toHttp2Headers(plain, true);
                    h.method(HttpMethod.CONNECT.asciiName());
                    h.set(Http2Headers.PseudoHeaderName.PROTOCOL.value(), protocol);
                    h.remove(HttpHeaderNames.SEC_WEBSOCKET_KEY);
                    h.remove(HttpHeaderNames.CONTENT_LENGTH);
                    ReferenceCountUtil.release(part);
                    return new DefaultHttp2HeadersFrame(h, false);
                }
            }
            return part;
        }

        @Override
        void release(boolean clean) {
            // A stream that ended both ways is closed already; any other gets RST_STREAM(CANCEL).
            channel.close();
        }

        @Override
        public Channel takeOverAsTunnel() {
            over = true;
            channel.pipeline().remove(CODEC);
            channel.pipeline().remove(handler);
            channel.pipeline().addFirst(StreamBytes.NAME, new StreamBytes());
            return channel;
        }

        /** The answer to an extended CONNECT, as the HTTP/1.1 101 the rest of the waypoint expects. */
        private HttpResponse switched(HttpResponse ok) {
            HttpResponse r = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.SWITCHING_PROTOCOLS,
                    ok.headers());
            r.headers().remove(HttpHeaderNames.TRANSFER_ENCODING);
            r.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.UPGRADE);
            r.headers().set(HttpHeaderNames.UPGRADE, WebSocketUpgrade.WEBSOCKET);
            if (!webSocketKey.isEmpty()) {
                r.headers().set(HttpHeaderNames.SEC_WEBSOCKET_ACCEPT, WebSocketUpgrade.accept(webSocketKey));
            }
            return r;
        }
    }

    /** The stream's events, for its call. */
    private final class StreamHandler extends ChannelInboundHandlerAdapter {
        private final Call call;

        StreamHandler(Call call) {
            this.call = call;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (call.upgraded) {
                // Bytes of the tunnel, held by PendingReads until the splice takes over.
                if (msg instanceof HttpContent content) {
                    boolean last = content instanceof LastHttpContent;
                    ctx.fireChannelRead(content.content().retain());
                    content.release();
                    if (last) {
                        ctx.fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
                    }
                } else {
                    ReferenceCountUtil.release(msg);
                }
                return;
            }
            Object part = msg;
            if (msg instanceof HttpResponse response) {
                UpstreamFailure malformed = UpstreamFailure.malformed(response, "HTTP/2");
                if (malformed != null) {
                    ReferenceCountUtil.release(msg);
                    call.fail(malformed);
                    ctx.close();
                    return;
                }
                // What the HTTP/2-to-HTTP/1 conversion adds for itself is not the server's.
                response.headers().remove(HttpConversionUtil.ExtensionHeaderNames.STREAM_ID.text());
                response.headers().remove(HttpConversionUtil.ExtensionHeaderNames.SCHEME.text());
                response.headers().remove(HttpConversionUtil.ExtensionHeaderNames.PATH.text());
                if (call.webSocketKey != null && response.status().codeClass() == HttpStatusClass.SUCCESS
                        && !(response instanceof LastHttpContent)) {
                    call.upgraded = true;
                    ctx.channel().config().setAutoRead(false);
                    ctx.pipeline().addAfter(ctx.name(), PendingReads.NAME,
                            new PendingReads(UpstreamClient.MAX_EARLY_TUNNEL_BYTES));
                    part = call.switched(response);
                }
            }
            call.received((HttpObject) part);
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            call.readComplete();
            ctx.fireChannelReadComplete();
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) {
            call.writabilityChanged();
            ctx.fireChannelWritabilityChanged();
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof Http2ResetFrame reset && !call.upgraded && !call.responseEnded) {
                // REFUSED_STREAM says the server did not act on the request: safe to send again.
                call.fail(new UpstreamFailure(reset.errorCode() == io.netty.handler.codec.http2.Http2Error.REFUSED_STREAM
                        .code() ? UpstreamFailure.Kind.REFUSED : UpstreamFailure.Kind.RESET,
                        "upstream reset the stream (" + reset.errorCode() + ")"));
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            if (!call.responseEnded) {
                call.fail(new UpstreamFailure(UpstreamFailure.Kind.RESET, "upstream stream reset before the response"));
            }
            ctx.fireChannelInactive();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            LOG.debugf("upstream %s: %s", key.target(), cause.toString());
            call.fail(new UpstreamFailure(UpstreamFailure.Kind.RESET, "upstream error: " + cause.getMessage()));
            ctx.close();
        }
    }
}
