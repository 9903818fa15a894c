package dev.ambient.waypoint.http;

import dev.ambient.hbone.Authority;
import dev.ambient.hbone.HboneServerInitializer;
import dev.ambient.waypoint.proxy.StreamBytes;
import dev.ambient.waypoint.telemetry.AccessLog;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * Server-side timeouts of the HTTP spoken inside one tunnel: request headers (from a request's
 * first byte to the end of its headers, Envoy's request_headers_timeout), request (a request that
 * stalls: from its first byte until it is received whole or its response begins, no gap without a
 * byte of it may be longer, while the waypoint was reading; a long upload that keeps coming is
 * never cut, and time the waypoint itself did not read, pushing back, does not count) and idle (no
 * request under way). A request that runs out of time gets 408 and the connection ends; an idle
 * connection ends (with GOAWAY first for HTTP/2). Each ending is one log line with the reason.
 *
 * <p>It sits right after {@link StreamBytes}, ahead of the protocol sniffer, so it sees the
 * tunnel's first bytes (a client that trickles them is timed while it is being sniffed). For
 * HTTP/1.1 an {@link #observer()} after the codec tells it where requests and responses begin and
 * end; for HTTP/2 it counts open streams, and each stream times its own request
 * ({@link #streamRequestTimeout}). A tunnel found to be TCP removes it. Event loop only.
 */
public final class HttpDeadlines extends ChannelInboundHandlerAdapter {

    public static final String NAME = "http-deadlines";
    /** The per-stream request timeout of an h2c stream. */
    public static final String STREAM_NAME = "http-stream-deadline";

    /** The three timeouts (waypoint.http.request-header-timeout, request-timeout, idle-timeout). */
    public record Limits(Duration requestHeaders, Duration request, Duration idle) {
    }

    private final Limits limits;
    private final Http2StreamChannel stream;
    private final Tunnel tunnel;
    private ChannelHandlerContext observerCtx;
    private boolean http2;
    private boolean ended;
    /** From a request's first byte until its last one has been decoded. */
    private boolean receiving;
    /** A response head went out and its end not yet. */
    private boolean responding;
    private int started;
    private int answered;
    /** When a byte of the tunnel was last read, or reading last resumed (System.nanoTime). */
    private long lastRead = System.nanoTime();
    /** The waypoint does not read the request now (the endpoint pushes back). */
    private boolean paused;
    private int openStreams;
    private ScheduledFuture<?> idleTimer;
    private ScheduledFuture<?> headerTimer;
    private ScheduledFuture<?> requestTimer;
    /** The 408 this connection ends with, once written. */
    private FullHttpResponse timeoutResponse;

    /** @param stream the CONNECT stream the HTTP connection is carried in */
    public HttpDeadlines(Limits limits, Http2StreamChannel stream, Tunnel tunnel) {
        this.limits = limits;
        this.stream = stream;
        this.tunnel = tunnel;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        armIdle();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        lastRead = System.nanoTime();
        if (!http2 && !receiving && !ended && msg instanceof ByteBuf b && b.isReadable()) {
            requestBegins(true);
        }
        ctx.fireChannelRead(msg);
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        cancel();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        cancel();
        ctx.fireChannelInactive();
    }

    /**
     * The waypoint stops (false) or resumes (true) reading the request, as the endpoint takes its
     * body: a client cannot be late while it is not read, and its time starts again on resuming.
     */
    public void reading(boolean on) {
        if (on && paused) {
            lastRead = System.nanoTime();
        }
        paused = !on;
    }

    /** The tunnel carries HTTP/2: streams time their requests; the connection is idle while it has none. */
    public void http2() {
        http2 = true;
        receiving = false; // the preface's bytes began no request
        cancel();
        armIdle();
    }

    /** A stream of the HTTP/2 connection opened; it is counted until it closes. */
    public void streamOpened(Http2StreamChannel stream) {
        openStreams++;
        cancel(idleTimer);
        stream.closeFuture().addListener(f -> {
            if (--openStreams == 0) {
                armIdle();
            }
        });
    }

    /** For HTTP/1.1: the handler to put right after the codec. */
    public ChannelDuplexHandler observer() {
        return new ChannelDuplexHandler() {
            @Override
            public void handlerAdded(ChannelHandlerContext ctx) {
                observerCtx = ctx;
            }

            @Override
            public void channelRead(ChannelHandlerContext ctx, Object msg) {
                if (ended) {
                    ReferenceCountUtil.release(msg); // a request after 408: never served
                    return;
                }
                if (msg instanceof HttpRequest) {
                    started++;
                    cancel(headerTimer);
                    if (!receiving) {
                        requestBegins(false); // it came in the same read as the one before it
                    }
                }
                if (msg instanceof LastHttpContent) {
                    receiving = false;
                    cancel(requestTimer);
                }
                ctx.fireChannelRead(msg);
            }

            @Override
            public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
                if (ended && msg != timeoutResponse) {
                    // After a 408 nothing more goes out: an exchange still under way is being abandoned.
                    ReferenceCountUtil.release(msg);
                    promise.tryFailure(new java.nio.channels.ClosedChannelException());
                    return;
                }
                if (msg instanceof HttpResponse r && r.status().code() >= 200) {
                    responding = true;
                    // Its response began: from now on the exchange's stream-idle-timeout watches it.
                    cancel(requestTimer);
                }
                if (responding && msg instanceof LastHttpContent) {
                    responding = false;
                    answered++;
                    promise = promise.unvoid();
                    promise.addListener(f -> {
                        if (started == answered && !receiving) {
                            armIdle();
                        }
                    });
                }
                ctx.write(msg, promise);
            }
        };
    }

    private void requestBegins(boolean headersPending) {
        receiving = true;
        cancel(idleTimer);
        if (headersPending) {
            headerTimer = schedule(limits.requestHeaders(), () -> expired("request header timeout "
                    + limits.requestHeaders().toMillis() + " ms", started == answered && !responding));
        }
        lastRead = System.nanoTime();
        armRequestTimer(limits.request().toNanos());
    }

    /** Checks, after {@code nanos}, that the request did not stall for the request timeout. */
    private void armRequestTimer(long nanos) {
        requestTimer = stream.eventLoop().schedule(() -> {
            if (ended || !receiving) {
                return;
            }
            if (paused) {
                lastRead = System.nanoTime(); // not read: the client cannot be late
            }
            long idle = System.nanoTime() - lastRead;
            if (idle < limits.request().toNanos()) {
                armRequestTimer(limits.request().toNanos() - idle);
                return;
            }
            expired("request timeout " + limits.request().toMillis() + " ms without a byte of the request",
                    started <= answered + 1 && !responding);
        }, nanos, TimeUnit.NANOSECONDS);
    }

    /** A request ran out of time: 408 if no earlier response is still owed, else just the end of the connection. */
    private void expired(String reason, boolean mayAnswer) {
        if (ended) {
            return;
        }
        ended = true;
        cancel();
        log(tunnel, "closed: " + reason);
        if (observerCtx != null && mayAnswer) {
            timeoutResponse = timeoutResponse();
            observerCtx.writeAndFlush(timeoutResponse).addListener(f -> endTunnel());
        } else {
            endTunnel();
        }
    }

    private void armIdle() {
        cancel(idleTimer);
        if (ended) {
            return;
        }
        idleTimer = schedule(limits.idle(), () -> {
            if (ended || receiving || responding || openStreams > 0 || started != answered) {
                return;
            }
            ended = true;
            cancel();
            log(tunnel, "closed: idle timeout " + limits.idle().toMillis() + " ms");
            if (http2) {
                HboneServerInitializer.goAway(stream);
            }
            endTunnel();
        });
    }

    /** END_STREAM to the client, which then ends its side; the stream is closed in any case a little later. */
    private void endTunnel() {
        StreamBytes.endOutput(stream);
        stream.eventLoop().schedule(() -> stream.close(), 2, TimeUnit.SECONDS);
    }

    private ScheduledFuture<?> schedule(Duration d, Runnable r) {
        return stream.eventLoop().schedule(r, d.toMillis(), TimeUnit.MILLISECONDS);
    }

    private static void log(Tunnel t, String outcome) {
        AccessLog.connection("http", Authority.format(t.source()), t.peer().uri(), t.describe(), outcome);
    }

    private void cancel() {
        cancel(idleTimer);
        cancel(headerTimer);
        cancel(requestTimer);
    }

    private static void cancel(ScheduledFuture<?> timer) {
        if (timer != null) {
            timer.cancel(false);
        }
    }

    static FullHttpResponse timeoutResponse() {
        FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.REQUEST_TIMEOUT,
                Unpooled.copiedBuffer("request timeout", StandardCharsets.UTF_8));
        r.headers().set(HttpHeaderNames.CONTENT_TYPE, "text/plain");
        r.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, r.content().readableBytes());
        r.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
        return r;
    }

    /**
     * For each HTTP/2 stream, after its frame-to-HTTP codec: until the request is received whole or
     * its response begins, no gap without a byte of it may be longer than {@code timeout} while the
     * stream is read, else 408 and the stream is reset.
     */
    public static StreamRequestTimeout streamRequestTimeout(Duration timeout, Tunnel tunnel) {
        return new StreamRequestTimeout(timeout, tunnel);
    }

    /** The request timeout of one HTTP/2 stream. */
    public static final class StreamRequestTimeout extends ChannelDuplexHandler {
        private final Duration timeout;
        private final Tunnel tunnel;
        private ScheduledFuture<?> timer;
        private long lastRead = System.nanoTime();
        private boolean paused;
        private boolean over;

        StreamRequestTimeout(Duration timeout, Tunnel tunnel) {
            this.timeout = timeout;
            this.tunnel = tunnel;
        }

        /** As {@link HttpDeadlines#reading(boolean)}, for this stream. */
        public void reading(boolean on) {
            if (on && paused) {
                lastRead = System.nanoTime();
            }
            paused = !on;
        }

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            arm(ctx, timeout.toNanos());
        }

        private void arm(ChannelHandlerContext ctx, long nanos) {
            timer = ctx.executor().schedule(() -> {
                if (over) {
                    return;
                }
                if (paused) {
                    lastRead = System.nanoTime(); // not read: the client cannot be late
                }
                long idle = System.nanoTime() - lastRead;
                if (idle < timeout.toNanos()) {
                    arm(ctx, timeout.toNanos() - idle);
                    return;
                }
                over = true;
                log(tunnel, "stream reset: request timeout " + timeout.toMillis() + " ms without a byte of it");
                FullHttpResponse r = timeoutResponse();
                r.headers().remove(HttpHeaderNames.CONNECTION);
                ctx.writeAndFlush(r).addListener(f -> ctx.close());
            }, nanos, TimeUnit.NANOSECONDS);
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            lastRead = System.nanoTime();
            if (msg instanceof LastHttpContent) {
                over = true;
                cancel(timer);
            }
            ctx.fireChannelRead(msg);
        }

        @Override
        public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
            if (msg instanceof HttpResponse r && r.status().code() >= 200) {
                over = true; // its response began: the exchange's stream-idle-timeout watches it
                cancel(timer);
            }
            ctx.write(msg, promise);
        }

        @Override
        public void handlerRemoved(ChannelHandlerContext ctx) {
            over = true;
            cancel(timer);
        }
    }
}
