package dev.ambient.waypoint.proxy;

import dev.ambient.net.PendingReads;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.EventLoop;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
import org.jboss.logging.Logger;

/**
 * One HTTP/1.1 connection to an endpoint inside a CONNECT stream, one call at a time. When a
 * call's request and response both ended and neither side asked to close, the connection goes back
 * to the pool for the next call to that endpoint; any other ending closes it. After a
 * {@code 101 Switching Protocols} it stops being HTTP: what follows is held until the caller takes
 * the stream over as a byte tunnel. Event loop only.
 */
final class Http1Upstream extends ChannelInboundHandlerAdapter {

    private static final Logger LOG = Logger.getLogger(Http1Upstream.class);
    private static final String CODEC = "http-client-codec";
    /** Body chunks as large as the HBONE frames that carry them, rather than Netty's 8 KiB. */
    static final int MAX_CHUNK_BYTES = 64 * 1024;

    final UpstreamClient.Key key;
    /** A CONNECT stream to the endpoint, or a socket (plain or TLS) to an endpoint outside the mesh. */
    final Channel stream;
    private final UpstreamClient client;
    private Call current;
    private boolean reusable = true;
    private boolean upgraded;

    Http1Upstream(UpstreamClient.Key key, Channel stream, UpstreamClient client) {
        this.key = key;
        this.stream = stream;
        this.client = client;
    }

    void install() {
        if (stream instanceof Http2StreamChannel) {
            stream.pipeline().addLast(StreamBytes.NAME, new StreamBytes());
        }
        stream.pipeline().addLast(CODEC, new HttpClientCodec(new HttpDecoderConfig().setMaxChunkSize(MAX_CHUNK_BYTES),
                HttpClientCodec.DEFAULT_PARSE_HTTP_AFTER_CONNECT_REQUEST,
                HttpClientCodec.DEFAULT_FAIL_ON_MISSING_RESPONSE));
        stream.pipeline().addLast(this);
        stream.closeFuture().addListener(f -> key.loop().execute(() -> client.forget(this)));
    }

    boolean usable() {
        return stream.isActive() && reusable && current == null && !upgraded;
    }

    void attach(Call call) {
        if (!usable()) {
            // Closed between the pick and now: the request never left, so it may go elsewhere.
            call.connectFailed(new UpstreamFailure(UpstreamFailure.Kind.CONNECT, "pooled connection to "
                    + key.target() + " closed before use"));
            return;
        }
        current = call;
        call.connection = this;
        call.attached(stream);
    }

    void close() {
        stream.close();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (upgraded) {
            if (msg instanceof ByteBuf) {
                ctx.fireChannelRead(msg); // held by PendingReads until the splice takes over
            } else {
                ReferenceCountUtil.release(msg); // the empty end of the 101's (absent) body
            }
            return;
        }
        Call c = current;
        if (c == null) {
            // Bytes nobody asked for: this connection cannot be trusted with another request.
            ReferenceCountUtil.release(msg);
            reusable = false;
            stream.close();
            return;
        }
        if (msg instanceof HttpResponse response) {
            UpstreamFailure malformed = UpstreamFailure.malformed(response, "HTTP/1.1");
            if (malformed != null) {
                ReferenceCountUtil.release(msg);
                c.fail(malformed);
                stream.close();
                return;
            }
            if (!HttpUtil.isKeepAlive(response)) {
                reusable = false;
            }
            if (response.status().code() == 101) {
                upgraded = true;
                stream.config().setAutoRead(false);
                ctx.pipeline().addAfter(ctx.name(), PendingReads.NAME,
                        new PendingReads(UpstreamClient.MAX_EARLY_TUNNEL_BYTES));
            }
        } else if (msg instanceof HttpContent content && content.decoderResult().isFailure()) {
            String why = content.decoderResult().cause().getMessage();
            ReferenceCountUtil.release(msg);
            c.fail(new UpstreamFailure(UpstreamFailure.Kind.PROTOCOL, "not a valid HTTP/1.1 body: " + why));
            stream.close();
            return;
        }
        c.received((HttpObject) msg);
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        if (current != null) {
            current.readComplete();
        }
        ctx.fireChannelReadComplete();
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
        if (current != null) {
            current.writabilityChanged();
        }
        ctx.fireChannelWritabilityChanged();
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof ChannelInputShutdownEvent) {
            reusable = false; // the server ended its side: finish this response (the codec ended it), then close
            if (current == null && !upgraded) {
                stream.close(); // an idle keep-alive connection the application closed
            }
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        Call c = current;
        current = null;
        if (c != null) {
            c.fail(new UpstreamFailure(UpstreamFailure.Kind.RESET, "upstream connection closed before the response"));
        }
        ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        LOG.debugf("upstream %s: %s", key.target(), cause.toString());
        Call c = current;
        current = null;
        if (c != null) {
            c.fail(new UpstreamFailure(UpstreamFailure.Kind.RESET, "upstream error: " + cause.getMessage()));
        }
        ctx.close();
    }

    /** A call is over: the connection is reused only after a clean one. */
    private void done(boolean clean) {
        current = null;
        if (clean && reusable && stream.isActive()) {
            stream.config().setAutoRead(true); // to notice a close while idle
            client.release(this);
        } else {
            reusable = false;
            stream.close();
        }
    }

    /** The connection's stream as a byte tunnel: the codec and this handler leave; PendingReads stays. */
    private Channel takeOver() {
        current = null;
        reusable = false;
        stream.pipeline().remove(CODEC);
        stream.pipeline().remove(this);
        return stream;
    }

    /** A call over an HTTP/1.1 connection; connecting until a connection is attached. */
    static final class Call extends ChannelCall {
        Http1Upstream connection;

        Call(UpstreamCall.Listener listener, EventLoop loop) {
            super(listener, loop);
        }

        @Override
        void release(boolean clean) {
            if (connection != null && connection.current == this) {
                connection.done(clean);
            }
        }

        @Override
        public Channel takeOverAsTunnel() {
            over = true;
            return connection.takeOver();
        }
    }
}
