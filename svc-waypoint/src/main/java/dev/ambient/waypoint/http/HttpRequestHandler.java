package dev.ambient.waypoint.http;

import dev.ambient.hbone.Authority;
import dev.ambient.waypoint.proxy.StreamBytes;
import dev.ambient.waypoint.telemetry.AccessLog;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;

/**
 * Receives whole requests (after the HTTP codec and aggregator) and answers them one at a time,
 * in order. For HTTP/1.1 inside a tunnel it also stops reading while a request is in flight
 * (backpressure, and no pipelined request jumps the queue), keeps the connection alive when the
 * client wants it and the waypoint is not draining, and ends the tunnel otherwise. For HTTP/2,
 * one handler serves one stream.
 */
public final class HttpRequestHandler extends ChannelInboundHandlerAdapter {

    private final DataPath path;
    private final Tunnel tunnel;
    private final boolean http1;
    /** The HBONE stream carrying an HTTP/1.1 connection (null for HTTP/2, whose codec owns the stream). */
    private final Http2StreamChannel tunnelStream;
    private final ArrayDeque<FullHttpRequest> queued = new ArrayDeque<>();
    private Exchange current;
    private boolean inputEnded;
    private boolean closing;

    public HttpRequestHandler(DataPath path, Tunnel tunnel, boolean http1, Http2StreamChannel tunnelStream) {
        this.path = path;
        this.tunnel = tunnel;
        this.http1 = http1;
        this.tunnelStream = tunnelStream;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (!(msg instanceof FullHttpRequest request)) {
            ReferenceCountUtil.release(msg);
            return;
        }
        if (request.decoderResult().isFailure()) {
            request.release();
            FullHttpResponse bad = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.BAD_REQUEST,
                    Unpooled.copiedBuffer("bad request: " + request.decoderResult().cause().getMessage(),
                            StandardCharsets.UTF_8));
            bad.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, bad.content().readableBytes());
            closing = true;
            write(ctx, bad, false, false);
            return;
        }
        if (closing) {
            request.release();
            return;
        }
        queued.add(request);
        if (http1) {
            ctx.channel().config().setAutoRead(false);
        }
        next(ctx);
    }

    private void next(ChannelHandlerContext ctx) {
        if (current != null) {
            return;
        }
        FullHttpRequest request = queued.poll();
        if (request == null) {
            if (http1) {
                if (inputEnded) {
                    endTunnel(ctx);
                } else if (!closing) {
                    ctx.channel().config().setAutoRead(true);
                }
            }
            return;
        }
        boolean keepAlive = HttpUtil.isKeepAlive(request);
        String protocol = http1 ? request.protocolVersion().text() : "HTTP/2";
        boolean head = HttpMethod.HEAD.equals(request.method());
        current = new Exchange(path, tunnel, request, protocol, ctx.channel().eventLoop(),
                response -> write(ctx, response, keepAlive, head));
        current.run();
    }

    private void write(ChannelHandlerContext ctx, FullHttpResponse response, boolean keepAlive, boolean head) {
        if (!http1) {
            response.headers().remove(HttpHeaderNames.CONNECTION);
            response.headers().remove("keep-alive");
            response.headers().remove(HttpHeaderNames.TRANSFER_ENCODING);
            ctx.writeAndFlush(response);
            current = null;
            return;
        }
        boolean keep = keepAlive && !closing && !path.draining() && !inputEnded;
        response.headers().remove("keep-alive");
        response.headers().remove(HttpHeaderNames.TRANSFER_ENCODING);
        int status = response.status().code();
        if (status < 200 || status == 204 || status == 304) {
            response.headers().remove(HttpHeaderNames.CONTENT_LENGTH); // these never carry a body
        } else if (!head) {
            // A HEAD response keeps the length of the body it does not carry.
            response.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, response.content().readableBytes());
        }
        HttpUtil.setKeepAlive(response, keep);
        if (!keep) {
            closing = true;
        }
        ctx.writeAndFlush(response).addListener(f -> {
            current = null;
            if (!f.isSuccess()) {
                ctx.close();
                return;
            }
            if (closing) {
                queued.forEach(FullHttpRequest::release);
                queued.clear();
                endTunnel(ctx);
            } else {
                next(ctx);
            }
        });
    }

    /** Ends the HTTP/1.1 connection: END_STREAM on the tunnel, then close once both sides are done. */
    private void endTunnel(ChannelHandlerContext ctx) {
        if (tunnelStream != null && tunnelStream.isActive()) {
            StreamBytes.endOutput(tunnelStream);
            // The client's END_STREAM usually follows; do not wait for it forever.
            tunnelStream.eventLoop().schedule(() -> tunnelStream.close(), 5, java.util.concurrent.TimeUnit.SECONDS);
            if (inputEnded) {
                tunnelStream.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
            }
        }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof ChannelInputShutdownEvent) {
            inputEnded = true;
            if (http1 && current == null && queued.isEmpty()) {
                endTunnel(ctx);
            }
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        queued.forEach(FullHttpRequest::release);
        queued.clear();
        if (current != null) {
            current.abandon();
            current = null;
        }
        ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        Throwable root = cause instanceof DecoderException && cause.getCause() != null ? cause.getCause() : cause;
        if (root instanceof BodyBudget.Exhausted exhausted) {
            overBudget(ctx, exhausted);
            return;
        }
        ctx.close();
    }

    /**
     * A request body did not fit in the waypoint's body budget: 503 and the end of this connection
     * (HTTP/1.1) or stream (HTTP/2). What the aggregator held is freed at once, and the rest of
     * the body is read and dropped (never held, not even in the stream's queue) until the end.
     */
    private void overBudget(ChannelHandlerContext ctx, BodyBudget.Exhausted exhausted) {
        if (closing) {
            return; // said already
        }
        closing = true;
        // The aggregator frees the part of the body it holds (and its budget) when it leaves; it is
        // in the middle of a read now, so it leaves right after.
        ctx.executor().execute(() -> {
            if (ctx.pipeline().get(BudgetedAggregator.class) != null) {
                ctx.pipeline().remove(BudgetedAggregator.class);
            }
        });
        AccessLog.connection("http", Authority.format(tunnel.source()), tunnel.peer().uri(), tunnel.describe(),
                "refused 503: " + exhausted.getMessage());
        if (current != null) {
            ctx.close(); // an earlier response is still owed: nothing can be said in order
            return;
        }
        FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.SERVICE_UNAVAILABLE,
                Unpooled.copiedBuffer("waypoint overloaded: buffered bodies at their limit", StandardCharsets.UTF_8));
        r.headers().set(HttpHeaderNames.CONTENT_TYPE, "text/plain");
        if (http1) {
            write(ctx, r, false, false);
        } else {
            r.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, r.content().readableBytes());
            ctx.writeAndFlush(r).addListener(ChannelFutureListener.CLOSE);
        }
    }
}
