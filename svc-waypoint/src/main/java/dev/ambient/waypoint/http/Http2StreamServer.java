package dev.ambient.waypoint.http;

import dev.ambient.hbone.StreamReading;
import dev.ambient.net.PendingReads;
import dev.ambient.waypoint.proxy.StreamBytes;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.DefaultLastHttpContent;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http2.DefaultHttp2ResetFrame;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import io.netty.util.AsciiString;
import io.netty.util.ReferenceCountUtil;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * The server side of one stream of an h2c connection carried in a tunnel: its request becomes an
 * {@link Exchange} as soon as its HEADERS are read, DATA flows on as the endpoint takes it (the
 * stream's flow-control window pushes back on the client), and the response goes out as it comes,
 * trailers included. An extended CONNECT ({@code :protocol websocket}, RFC 8441) is read as the
 * HTTP/1.1 upgrade it stands for and answered {@code 200} when the endpoint switched, after which
 * the stream carries bytes. Event loop only.
 */
public final class Http2StreamServer extends DownstreamServer {

    static final String CODEC = "h2-to-http";

    private final DataPath path;
    private final Tunnel tunnel;
    private final HttpDeadlines.StreamRequestTimeout deadline;
    private boolean requestEnded;
    private boolean upgraded;
    /** The protocol of this stream's extended CONNECT, or null. */
    private String connectProtocol;

    private Http2StreamServer(DataPath path, Tunnel tunnel, HttpDeadlines.StreamRequestTimeout deadline) {
        this.path = path;
        this.tunnel = tunnel;
        this.deadline = deadline;
    }

    /** The handlers of one h2c stream, this last. */
    public static void install(Http2StreamChannel child, DataPath path, Tunnel tunnel) {
        var deadline = HttpDeadlines.streamRequestTimeout(path.limits.deadlines().request(), tunnel);
        Http2StreamServer server = new Http2StreamServer(path, tunnel, deadline);
        child.pipeline().addLast(new ExtendedConnect(server));
        child.pipeline().addLast(CODEC, new Http2StreamFrameToHttpObjectCodec(true));
        child.pipeline().addLast(HttpDeadlines.STREAM_NAME, deadline);
        child.pipeline().addLast(server);
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        this.ctx = ctx;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (msg instanceof HttpRequest request && current == null && !requestEnded) {
            if (request.decoderResult().isFailure()) {
                ReferenceCountUtil.release(msg);
                FullHttpResponse bad = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.BAD_REQUEST,
                        Unpooled.copiedBuffer("bad request", StandardCharsets.UTF_8));
                ctx.writeAndFlush(bad).addListener(f -> ctx.close());
                return;
            }
            HttpRequest head = request;
            LastHttpContent body = null;
            if (request instanceof FullHttpRequest full) {
                // HEADERS with END_STREAM: the head, and an empty end of body.
                head = new DefaultHttpRequest(full.protocolVersion(), full.method(), full.uri(), full.headers());
                body = new DefaultLastHttpContent(full.content().retain());
                body.trailingHeaders().set(full.trailingHeaders());
                full.release();
                // Known to have ended before the exchange starts: an answer it gives at once
                // needs no RST_STREAM (which curl took as an empty reply).
                requestEnded = true;
            }
            current = new Exchange(path, tunnel, head, connectProtocol, this, ctx.channel().eventLoop());
            current.start();
            if (body != null) {
                content(body, ctx);
            }
            return;
        }
        if (msg instanceof HttpContent part) {
            content(part, ctx);
            return;
        }
        ReferenceCountUtil.release(msg);
    }

    private void content(HttpContent part, ChannelHandlerContext ctx) {
        if (part instanceof LastHttpContent) {
            requestEnded = true;
        }
        if (current != null) {
            current.requestContent(part);
        } else {
            part.release();
        }
    }

    // ------------------------------------------------------------------ Downstream

    @Override
    public String protocol() {
        return "HTTP/2";
    }

    @Override
    public boolean http2() {
        return true;
    }

    @Override
    public void informational(FullHttpResponse response) {
        ctx.writeAndFlush(response);
    }

    @Override
    public void head(HttpResponse response) {
        // The conversion leaves out what HTTP/2 forbids (connection, keep-alive, transfer-encoding, ...).
        Exchange.stripHopByHop(response.headers());
        writeHead(response);
    }

    @Override
    public void readRequest(boolean read) {
        if (!upgraded) {
            boolean on = read || current == null;
            deadline.reading(on);
            StreamReading.set(ctx.channel(), on);
        }
    }

    @Override
    public void abort() {
        ctx.channel().writeAndFlush(new DefaultHttp2ResetFrame(Http2Error.INTERNAL_ERROR));
        ctx.close();
    }

    @Override
    public void ended(boolean requestEnded) {
        if (upgraded) {
            return;
        }
        current = null;
        if (!this.requestEnded && ctx.channel().isActive()) {
            // Answered before the request ended: the rest of it is not wanted (RFC 9113 8.1). The
            // reset goes after the response is out: written at once it would drop the response's
            // DATA still waiting for the flow-control window.
            ChannelFuture out = lastWrite != null ? lastWrite : ctx.newSucceededFuture();
            out.addListener(f -> {
                if (ctx.channel().isActive()) {
                    ctx.channel().writeAndFlush(new DefaultHttp2ResetFrame(Http2Error.NO_ERROR));
                }
            });
        }
        ctx.channel().config().setAutoRead(true); // to see the stream's end, which closes it
    }

    @Override
    public void upgrade(HttpResponse response, Consumer<Http2StreamChannel> switched) {
        upgraded = true;
        // RFC 8441: the extended CONNECT is answered 200; the HTTP/1.1 upgrade headers mean nothing here.
        HttpResponse ok = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK, response.headers());
        Exchange.stripHopByHop(ok.headers());
        ok.headers().remove(HttpHeaderNames.SEC_WEBSOCKET_ACCEPT);
        ok.headers().remove(HttpHeaderNames.CONTENT_LENGTH);
        Http2StreamChannel child = (Http2StreamChannel) ctx.channel();
        ctx.writeAndFlush(ok).addListener(f -> {
            if (!f.isSuccess()) {
                ctx.close();
                return;
            }
            ChannelPipeline p = child.pipeline();
            child.config().setAutoRead(false);
            p.addFirst(StreamBytes.NAME, new StreamBytes());
            p.addAfter(StreamBytes.NAME, PendingReads.NAME, new PendingReads(1 << 20));
            p.remove(ExtendedConnect.class);
            p.remove(CODEC);
            p.remove(HttpDeadlines.STREAM_NAME);
            p.remove(this);
            switched.accept(child);
        });
    }

    // ------------------------------------------------------------------ the stream's events

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof Http2ResetFrame && current != null) {
            Exchange e = current;
            current = null;
            e.abandon(); // the client reset its stream
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        abandonCurrent();
        ctx.fireChannelInactive();
    }

    /**
     * Reads an extended CONNECT (RFC 8441) as the HTTP/1.1 upgrade it stands for, as Envoy does:
     * {@code :method GET} and an {@code upgrade} header, {@code :protocol} noted for the exchange
     * (the HTTP/2-to-HTTP/1 conversion would drop it). Only websocket is tunnelled; any other
     * protocol is refused here with 400.
     */
    private static final class ExtendedConnect extends ChannelInboundHandlerAdapter {
        private static final AsciiString PROTOCOL = AsciiString.cached(Http2Headers.PseudoHeaderName.PROTOCOL.value()
                .toString());
        private final Http2StreamServer server;
        private boolean first = true;

        ExtendedConnect(Http2StreamServer server) {
            this.server = server;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (first && msg instanceof Http2HeadersFrame frame) {
                first = false;
                Http2Headers h = frame.headers();
                CharSequence protocol = h.get(PROTOCOL);
                if (protocol != null && "CONNECT".contentEquals(h.method())) {
                    String p = protocol.toString().toLowerCase(Locale.ROOT);
                    if (!WebSocketUpgrade.supported(p)) {
                        // Through the codec, which sits after this handler.
                        ctx.channel().writeAndFlush(new DefaultFullHttpResponse(HttpVersion.HTTP_1_1,
                                HttpResponseStatus.BAD_REQUEST, Unpooled.EMPTY_BUFFER)).addListener(f -> ctx.close());
                        return;
                    }
                    server.connectProtocol = p;
                    h.method("GET");
                    h.remove(PROTOCOL);
                    h.set(HttpHeaderNames.UPGRADE, p);
                }
            }
            ctx.fireChannelRead(msg);
        }
    }
}
