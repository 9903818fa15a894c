package dev.ambient.waypoint.http;

import dev.ambient.hbone.StreamReading;
import dev.ambient.net.PendingReads;
import dev.ambient.waypoint.proxy.StreamBytes;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The server side of an HTTP/1.1 connection carried in one tunnel: each request becomes an
 * {@link Exchange} as soon as its head is read, its body is passed on as it arrives (reading only
 * as fast as the endpoint takes it), and its response is written as it comes, framed for the
 * client (its length, else chunked, else until the connection ends for HTTP/1.0). Requests are
 * answered one at a time, in order: once a request was read whole, reading stops until its
 * response ended, so a pipelined request never jumps the queue (what one read brought is held).
 * The connection stays open when the client and the response allow it and the waypoint is not
 * draining; a response that ends before its request was read whole closes it, as Envoy does.
 * After a {@code 101} the connection becomes a byte tunnel. Event loop only.
 */
public final class Http1Server extends DownstreamServer {

    public static final String CODEC = "http-codec";
    public static final String OBSERVER = "http-deadlines-observer";
    public static final String NAME = "http-handler";
    /** Body chunks as large as the HBONE frames that carry them, rather than Netty's 8 KiB. */
    private static final int MAX_CHUNK_BYTES = 64 * 1024;

    private final DataPath path;
    private final Tunnel tunnel;
    /** The HBONE stream carrying this connection. */
    private final Http2StreamChannel stream;
    private final HttpDeadlines deadlines;
    /** Read ahead of their turn (pipelined): at most what one read brought. */
    private final ArrayDeque<Object> queued = new ArrayDeque<>();
    /** Between a request's head and its last part, as the decoder reads them. */
    private boolean inRequest;
    /** The request being read has no body (its head is all of it). */
    private boolean bodyless;
    private boolean clientKeepAlive;
    private HttpVersion clientVersion = HttpVersion.HTTP_1_1;
    private boolean headRequest;
    private boolean wantsBody;
    private boolean inputEnded;
    private boolean closing;
    private boolean upgraded;

    public Http1Server(DataPath path, Tunnel tunnel, Http2StreamChannel stream, HttpDeadlines deadlines) {
        this.path = path;
        this.tunnel = tunnel;
        this.stream = stream;
        this.deadlines = deadlines;
    }

    /** The codec for this server; header limits as Netty's defaults. */
    public static HttpServerCodec codec() {
        return new HttpServerCodec(new HttpDecoderConfig().setMaxChunkSize(MAX_CHUNK_BYTES));
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        this.ctx = ctx;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (closing) {
            ReferenceCountUtil.release(msg); // the rest of a request already answered, or after a 400
            return;
        }
        if (current != null && !inRequest || !queued.isEmpty()) {
            queued.add(msg); // a response is owed first
            return;
        }
        accept(msg);
        updateReading();
    }

    private void accept(Object msg) {
        if (inRequest) {
            if (!(msg instanceof HttpContent part)) {
                ReferenceCountUtil.release(msg);
                return;
            }
            if (part.decoderResult().isFailure()) {
                // A body that does not parse (a bad chunk): nothing can be said in order any more.
                part.release();
                closing = true;
                if (current != null) {
                    current.abandon();
                }
                ctx.close();
                return;
            }
            if (part instanceof LastHttpContent) {
                inRequest = false;
            }
            if (current != null) {
                current.requestContent(part);
            } else {
                part.release(); // its exchange was answered already
            }
            return;
        }
        if (!(msg instanceof HttpRequest request)) {
            ReferenceCountUtil.release(msg);
            return;
        }
        if (request.decoderResult().isFailure()) {
            badRequest(request.decoderResult().cause().getMessage());
            return;
        }
        inRequest = true;
        long length = HttpUtil.getContentLength(request, -1L);
        bodyless = !HttpUtil.isTransferEncodingChunked(request) && length <= 0;
        clientKeepAlive = HttpUtil.isKeepAlive(request);
        clientVersion = request.protocolVersion();
        headRequest = HttpMethod.HEAD.equals(request.method());
        wantsBody = false;
        String upgrade = WebSocketUpgrade.requested(request.headers());
        Exchange e = new Exchange(path, tunnel, request, WebSocketUpgrade.supported(upgrade) ? upgrade : null, this,
                ctx.channel().eventLoop());
        current = e;
        e.start();
    }

    private void badRequest(String why) {
        FullHttpResponse bad = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.BAD_REQUEST,
                Unpooled.copiedBuffer("bad request: " + why, StandardCharsets.UTF_8));
        bad.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, bad.content().readableBytes());
        bad.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
        closing = true;
        ctx.writeAndFlush(bad).addListener(f -> endTunnel());
    }

    private void updateReading() {
        if (upgraded) {
            return;
        }
        // Closing: read on and drop, so the client's end is seen. No exchange: the next request.
        // Within a request: as fast as the endpoint takes its body. Else: after this response.
        boolean read = closing || current == null || (inRequest && wantsBody);
        deadlines.reading(read);
        StreamReading.set(ctx.channel(), read);
    }

    // ------------------------------------------------------------------ Downstream

    @Override
    public String protocol() {
        return clientVersion.text();
    }

    @Override
    public boolean http2() {
        return false;
    }

    @Override
    public void informational(FullHttpResponse response) {
        if (clientVersion.equals(HttpVersion.HTTP_1_1) && !headRequest) {
            ctx.writeAndFlush(response);
        } else {
            response.release();
        }
    }

    @Override
    public void head(HttpResponse response) {
        int status = response.status().code();
        HttpHeaders h = response.headers();
        Exchange.stripHopByHop(h);
        boolean bodyNever = headRequest || status < 200 || status == 204 || status == 304;
        boolean keep = clientKeepAlive && !closing && !inputEnded && !path.draining() && (!inRequest || bodyless);
        if (response instanceof FullHttpResponse full) {
            if (status < 200 || status == 204 || status == 304) {
                h.remove(HttpHeaderNames.CONTENT_LENGTH); // these never carry a body
            } else if (!headRequest) {
                h.setInt(HttpHeaderNames.CONTENT_LENGTH, full.content().readableBytes());
            }
        } else if (!bodyNever && !h.contains(HttpHeaderNames.CONTENT_LENGTH)) {
            if (clientVersion.equals(HttpVersion.HTTP_1_1)) {
                h.set(HttpHeaderNames.TRANSFER_ENCODING, HttpHeaderValues.CHUNKED);
            } else {
                keep = false; // an HTTP/1.0 client reads such a body until the connection ends
            }
        }
        response.setProtocolVersion(HttpVersion.HTTP_1_1);
        HttpUtil.setKeepAlive(response, keep);
        if (!keep) {
            closing = true;
        }
        writeHead(response);
    }

    @Override
    public void readRequest(boolean read) {
        wantsBody = read;
        updateReading();
    }

    @Override
    public void abort() {
        // The client sees its response cut short: the stream is reset, the connection gone.
        closing = true;
        ctx.flush();
        stream.close();
    }

    @Override
    public void ended(boolean requestEnded) {
        if (upgraded) {
            return;
        }
        current = null;
        wantsBody = false;
        if (inRequest && !bodyless) {
            closing = true; // the rest of its body would be read as the next request
        }
        ChannelFuture written = lastWrite;
        lastWrite = null;
        if (written == null) {
            ctx.executor().execute(this::afterResponse);
            return;
        }
        written.addListener(f -> {
            if (!f.isSuccess()) {
                ctx.close();
                return;
            }
            ctx.executor().execute(this::afterResponse);
        });
    }

    /** A response was written whole: end the connection, or take the next request. */
    private void afterResponse() {
        if (upgraded || current != null) {
            return;
        }
        if (closing || (inputEnded && queued.isEmpty())) {
            queued.forEach(ReferenceCountUtil::release);
            queued.clear();
            endTunnel();
            return;
        }
        while (!queued.isEmpty() && !(current != null && !inRequest) && !closing) {
            accept(queued.poll());
        }
        if (inputEnded && current == null && queued.isEmpty()) {
            endTunnel();
            return;
        }
        updateReading();
    }

    @Override
    public void upgrade(HttpResponse response, Consumer<Http2StreamChannel> switched) {
        upgraded = true;
        response.headers().remove(HttpHeaderNames.CONTENT_LENGTH);
        response.headers().remove(HttpHeaderNames.TRANSFER_ENCODING);
        response.setProtocolVersion(HttpVersion.HTTP_1_1);
        ctx.writeAndFlush(response).addListener(f -> {
            if (!f.isSuccess()) {
                ctx.close();
                return;
            }
            // From now on bytes: the codec and the HTTP handlers leave; what the client sent after
            // its request (it should wait for the 101) is held for the splice.
            ChannelPipeline p = ctx.pipeline();
            stream.config().setAutoRead(false);
            p.addAfter(CODEC, PendingReads.NAME, new PendingReads(1 << 20));
            if (p.get(HttpDeadlines.NAME) != null) {
                p.remove(HttpDeadlines.NAME);
            }
            p.remove(OBSERVER);
            p.remove(CODEC);
            p.remove(this);
            switched.accept(stream);
        });
    }

    // ------------------------------------------------------------------ the tunnel's events

    /** Ends the connection: END_STREAM on the tunnel, then close once both sides are done. */
    private void endTunnel() {
        if (stream.isActive()) {
            StreamBytes.endOutput(stream);
            // The client's END_STREAM usually follows; do not wait for it forever.
            stream.eventLoop().schedule(() -> stream.close(), 5, TimeUnit.SECONDS);
            if (inputEnded) {
                stream.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
            }
        }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof ChannelInputShutdownEvent) {
            inputEnded = true;
            if (current == null && queued.isEmpty()) {
                endTunnel();
            }
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        queued.forEach(ReferenceCountUtil::release);
        queued.clear();
        abandonCurrent();
        ctx.fireChannelInactive();
    }
}
