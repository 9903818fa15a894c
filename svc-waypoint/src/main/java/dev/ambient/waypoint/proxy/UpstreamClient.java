package dev.ambient.waypoint.proxy;

import dev.ambient.hbone.ConnectionPool;
import dev.ambient.hbone.HboneHeaders;
import dev.ambient.hbone.PoolKey;
import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.workload.OriginatedTls;
import dev.ambient.net.PendingReads;
import dev.ambient.waypoint.identity.WaypointIdentity;
import dev.ambient.waypoint.state.WaypointState.Endpoint;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoop;
import dev.ambient.waypoint.http.BodyBudget;
import dev.ambient.waypoint.http.BudgetedAggregator;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2GoAwayFrame;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import io.netty.handler.codec.http2.HttpConversionUtil;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.jboss.logging.Logger;

/**
 * HTTP to endpoints through HBONE: each upstream connection is one CONNECT stream to the
 * endpoint's node ztunnel ({@code :authority} = pod ip:targetPort, the server must prove the
 * workload's identity, we present the waypoint's); the CONNECT streams themselves share pooled
 * mTLS HTTP/2 connections. Inside a CONNECT stream the waypoint speaks HTTP/1.1 (one request at a
 * time, the connection kept alive and reused for later requests to the same endpoint) or HTTP/2
 * with prior knowledge (one connection per endpoint, requests multiplexed as its streams; gRPC).
 * Pools are per event loop (as Envoy's per-worker pools): a request and its upstream connection
 * live on the same thread, so no request hops between threads.
 */
public final class UpstreamClient implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(UpstreamClient.class);

    /** An endpoint outside the mesh is keyed by the name it was known by and the TLS originated to it. */
    private record Key(InetSocketAddress target, SpiffeId expected, EventLoop loop, OriginatedTls tls) {
    }

    private static final Http2Settings H2_SETTINGS = Http2Settings.defaultSettings().pushEnabled(false)
            .initialWindowSize(1 << 20);

    private final java.util.function.Function<EventLoop, ConnectionPool> pools;
    private final WaypointIdentity identity;
    private final int hbonePort;
    private final int maxBodyBytes;
    private final BodyBudget bodyBudget;
    private final int maxIdle;
    private final Duration h2IdleTimeout;
    private final Map<Key, Deque<Connection>> idle = new ConcurrentHashMap<>();
    /** HTTP/2 connections, one per endpoint and event loop; each entry is touched by its loop only. */
    private final Map<Key, Multiplexed> multiplexed = new ConcurrentHashMap<>();
    private final AtomicInteger open = new AtomicInteger();
    private final ExternalDialer external;

    /** @param pools the HBONE connection pool dialling on a given event loop */
    public UpstreamClient(java.util.function.Function<EventLoop, ConnectionPool> pools, WaypointIdentity identity,
            int hbonePort, int maxBodyBytes, BodyBudget bodyBudget, int maxIdle, Duration h2IdleTimeout,
            ExternalDialer external) {
        this.external = external;
        this.bodyBudget = bodyBudget;
        this.pools = pools;
        this.h2IdleTimeout = h2IdleTimeout;
        this.identity = identity;
        this.hbonePort = hbonePort;
        this.maxBodyBytes = maxBodyBytes;
        this.maxIdle = maxIdle;
    }

    /** Upstream HTTP connections open now (idle or busy). */
    public int openConnections() {
        return open.get();
    }

    /**
     * Sends one request (its reference is taken) and completes with the full response, which the
     * caller releases; fails with {@link UpstreamFailure}. Failing the returned promise from outside
     * (a timeout) abandons the connection.
     */
    public Promise<FullHttpResponse> send(Endpoint endpoint, SpiffeId expected, FullHttpRequest request, EventLoop loop,
            boolean http2) {
        Promise<FullHttpResponse> result = loop.newPromise();
        Key key = new Key(endpoint.address() != null ? new InetSocketAddress(endpoint.address(), endpoint.port())
                : InetSocketAddress.createUnresolved(endpoint.hostname(), endpoint.port()), expected, loop, endpoint.tls());
        if (http2) {
            Multiplexed m = multiplexed.get(key);
            if (m == null || !m.usable()) {
                m = new Multiplexed(key);
                multiplexed.put(key, m);
                m.open(endpoint);
            }
            m.send(request, result);
            return result;
        }
        Deque<Connection> free = idle.get(key);
        Connection c;
        while (free != null && (c = free.pollFirst()) != null) {
            if (c.stream.isActive() && c.reusable) {
                c.send(request, result);
                return result;
            }
        }
        connect(endpoint, key).addListener(f -> {
            if (!f.isSuccess()) {
                ReferenceCountUtil.release(request);
                result.tryFailure(f.cause());
                return;
            }
            Channel stream = (Channel) f.getNow();
            Connection conn = new Connection(key, stream);
            if (stream instanceof Http2StreamChannel) {
                stream.pipeline().addLast(StreamBytes.NAME, new StreamBytes());
            }
            stream.pipeline().addLast(new HttpClientCodec());
            stream.pipeline().addLast(new BudgetedAggregator(maxBodyBytes, bodyBudget));
            stream.pipeline().addLast(conn);
            start(stream);
            conn.send(request, result); // kept for later if the exchange was abandoned meanwhile
        });
        return result;
    }

    /**
     * Opens a CONNECT stream to the endpoint; completes on the key's loop (the stream's own), or
     * fails with an {@link UpstreamFailure} of kind CONNECT.
     */
    private Promise<Channel> connect(Endpoint endpoint, Key key) {
        Promise<Channel> connected = key.loop().newPromise();
        if (endpoint.external()) {
            // Not an HBONE peer: dialled directly (TLS originated if asked), on the key's loop.
            external.dial(endpoint, key.loop()).addListener(f -> {
                if (f.isSuccess()) {
                    connected.trySuccess((Channel) f.getNow());
                } else {
                    connected.tryFailure(f.cause());
                }
            });
            return connected;
        }
        WaypointIdentity.TlsMaterial tls = identity.current();
        if (tls == null) {
            connected.setFailure(new UpstreamFailure(UpstreamFailure.Kind.CONNECT, "waypoint has no certificate yet"));
            return connected;
        }
        PoolKey poolKey = new PoolKey(identity.id(), new InetSocketAddress(endpoint.address(), hbonePort),
                Set.of(key.expected()));
        Future<Http2StreamChannel> opened = pools.apply(key.loop()).open(poolKey, tls.client(),
                HboneHeaders.connect(key.target(), null, null), null);
        opened.addListener(f -> {
            if (!f.isSuccess()) {
                connected.tryFailure(new UpstreamFailure(UpstreamFailure.Kind.CONNECT, "HBONE to " + endpoint.uid()
                        + " at " + key.target() + ": " + f.cause().getMessage()));
                return;
            }
            Http2StreamChannel stream = (Http2StreamChannel) f.getNow();
            stream.eventLoop().execute(() -> connected.trySuccess(stream));
        });
        return connected;
    }

    /** Counts the connection and lets its bytes flow, once its pipeline is in place. */
    private void start(Channel stream) {
        open.incrementAndGet();
        stream.closeFuture().addListener(x -> open.decrementAndGet());
        PendingReads.release(stream);
        stream.config().setAutoRead(true);
    }

    private void release(Connection c) {
        Deque<Connection> free = idle.computeIfAbsent(c.key, k -> new ConcurrentLinkedDeque<>());
        if (free.size() >= maxIdle) {
            c.stream.close();
            return;
        }
        free.offerFirst(c);
    }

    /** One HTTP/1.1 connection inside a CONNECT stream; one request at a time. */
    private final class Connection extends ChannelInboundHandlerAdapter {
        final Key key;
        final Channel stream;
        private Promise<FullHttpResponse> pending; // stream's loop only
        private volatile boolean reusable = true;

        Connection(Key key, Channel stream) {
            this.key = key;
            this.stream = stream;
        }

        void send(FullHttpRequest request, Promise<FullHttpResponse> result) {
            if (stream.eventLoop().inEventLoop()) {
                sendNow(request, result);
            } else {
                stream.eventLoop().execute(() -> sendNow(request, result));
            }
        }

        private void sendNow(FullHttpRequest request, Promise<FullHttpResponse> result) {
            {
                if (result.isDone()) {
                    // Answered already (a timeout, the client gone): never send it after all.
                    ReferenceCountUtil.release(request);
                    if (stream.isActive() && reusable) {
                        release(this);
                    } else {
                        stream.close();
                    }
                    return;
                }
                if (!stream.isActive()) {
                    ReferenceCountUtil.release(request);
                    result.tryFailure(new UpstreamFailure(UpstreamFailure.Kind.RESET, "upstream connection closed"));
                    return;
                }
                pending = result;
                // A timeout or a client gone away abandons the exchange: the connection cannot be reused.
                result.addListener(f -> {
                    if (!f.isSuccess()) {
                        stream.close();
                    }
                });
                stream.writeAndFlush(request).addListener(w -> {
                    if (!w.isSuccess()) {
                        fail(UpstreamFailure.Kind.RESET, "write failed: " + w.cause().getMessage());
                    }
                });
            }
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (!(msg instanceof FullHttpResponse response)) {
                ReferenceCountUtil.release(msg);
                return;
            }
            UpstreamFailure malformed = malformed(response, "HTTP/1.1");
            if (malformed != null) {
                fail(malformed.kind(), malformed.getMessage());
                stream.close();
                return;
            }
            Promise<FullHttpResponse> p = pending;
            pending = null;
            boolean keep = reusable && HttpUtil.isKeepAlive(response) && stream.isActive();
            if (p == null || !p.trySuccess(response)) {
                response.release();
                keep = false;
            }
            if (keep) {
                release(this);
            } else {
                stream.close();
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof io.netty.channel.socket.ChannelInputShutdownEvent) {
                reusable = false; // the server ended its side: finish this response, then close
                if (pending == null) {
                    // An idle keep-alive connection the application closed: never reuse it.
                    Deque<Connection> free = idle.get(key);
                    if (free != null) {
                        free.remove(this);
                    }
                    stream.close();
                }
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            fail(UpstreamFailure.Kind.RESET, "upstream connection closed before the response");
            Deque<Connection> free = idle.get(key);
            if (free != null) {
                free.remove(this);
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            UpstreamFailure f = failure(cause, maxBodyBytes);
            fail(f.kind(), f.getMessage());
            LOG.debugf("upstream %s: %s", key.target(), cause.toString());
            ctx.close();
        }

        private void fail(UpstreamFailure.Kind kind, String why) {
            Promise<FullHttpResponse> p = pending;
            pending = null;
            if (p != null) {
                p.tryFailure(new UpstreamFailure(kind, why));
            }
        }
    }

    /**
     * One HTTP/2 connection (prior knowledge, h2c) inside a CONNECT stream; each request is one of
     * its streams. Requests that arrive while it connects wait for it (on its loop, so in order).
     * GOAWAY from the server or the tunnel's end retires it; it closes after idling without streams.
     */
    private final class Multiplexed {
        final Key key;
        private final ArrayDeque<Runnable> waiting = new ArrayDeque<>();
        private Channel tunnel; // null while connecting
        private Throwable failed;
        private boolean retired;
        private int activeStreams;
        private long idleSince = System.nanoTime();

        Multiplexed(Key key) {
            this.key = key;
        }

        boolean usable() {
            return !retired && failed == null && (tunnel == null || tunnel.isActive());
        }

        void open(Endpoint endpoint) {
            connect(endpoint, key).addListener(f -> {
                if (!f.isSuccess()) {
                    failed = f.cause();
                    retire();
                } else {
                    tunnel = (Channel) f.getNow();
                    if (tunnel instanceof Http2StreamChannel) {
                        tunnel.pipeline().addLast(StreamBytes.NAME, new StreamBytes());
                    }
                    tunnel.pipeline().addLast(Http2FrameCodecBuilder.forClient().initialSettings(H2_SETTINGS).build());
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
                    start(tunnel);
                    scheduleIdleCheck();
                }
                for (Runnable r; (r = waiting.poll()) != null;) {
                    r.run();
                }
            });
        }

        void send(FullHttpRequest request, Promise<FullHttpResponse> result) {
            if (result.isDone()) {
                ReferenceCountUtil.release(request); // answered already: never send it
                return;
            }
            if (failed != null) {
                ReferenceCountUtil.release(request);
                result.tryFailure(failed);
                return;
            }
            if (tunnel == null) {
                waiting.add(() -> send(request, result));
                return;
            }
            new Http2StreamChannelBootstrap(tunnel).handler(new ChannelInitializer<Http2StreamChannel>() {
                @Override
                protected void initChannel(Http2StreamChannel ch) {
                    ch.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(false),
                            new BudgetedAggregator(maxBodyBytes, bodyBudget), new H2Response(key, maxBodyBytes, result));
                }
            }).open().addListener((Future<Http2StreamChannel> f) -> {
                if (!f.isSuccess()) {
                    ReferenceCountUtil.release(request);
                    result.tryFailure(new UpstreamFailure(UpstreamFailure.Kind.RESET,
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
                // A timeout or a client gone away abandons the exchange: reset just this stream.
                result.addListener(r -> {
                    if (!r.isSuccess()) {
                        stream.close();
                    }
                });
                stream.writeAndFlush(request).addListener(w -> {
                    if (!w.isSuccess()) {
                        result.tryFailure(new UpstreamFailure(UpstreamFailure.Kind.RESET,
                                "write failed: " + w.cause().getMessage()));
                    }
                });
            });
        }

        private void scheduleIdleCheck() {
            key.loop().schedule(() -> {
                if (!tunnel.isActive()) {
                    return;
                }
                if (activeStreams == 0 && System.nanoTime() - idleSince >= h2IdleTimeout.toNanos()) {
                    retire();
                    tunnel.close();
                } else {
                    scheduleIdleCheck();
                }
            }, h2IdleTimeout.toMillis(), TimeUnit.MILLISECONDS);
        }

        /** No new request uses this connection; streams open on it finish. */
        private void retire() {
            retired = true;
            multiplexed.remove(key, this);
        }
    }

    /** A failure (and the response released) when it did not parse as HTTP of {@code version}; else null. */
    private static UpstreamFailure malformed(FullHttpResponse response, String version) {
        int status = response.status().code();
        if (!response.decoderResult().isFailure() && status >= 100 && status <= 599) {
            return null;
        }
        // A status outside 100..599 is no HTTP status (and would make a response_code label of anything).
        String why = response.decoderResult().isFailure() ? response.decoderResult().cause().getMessage()
                : "status " + status;
        response.release();
        return new UpstreamFailure(UpstreamFailure.Kind.PROTOCOL, "not a valid " + version + " response: " + why);
    }

    /** What an error while reading a response means: too large, over the body budget, or a reset. */
    private static UpstreamFailure failure(Throwable cause, int maxBodyBytes) {
        Throwable root = cause instanceof DecoderException && cause.getCause() != null ? cause.getCause() : cause;
        return switch (root) {
            case TooLongFrameException t -> new UpstreamFailure(UpstreamFailure.Kind.TOO_LARGE,
                    "response larger than " + maxBodyBytes + " bytes");
            case BodyBudget.Exhausted e -> new UpstreamFailure(UpstreamFailure.Kind.OVERLOADED, e.getMessage());
            default -> new UpstreamFailure(UpstreamFailure.Kind.RESET, "upstream error: " + cause.getMessage());
        };
    }

    /** The response of one HTTP/2 stream. */
    private static final class H2Response extends ChannelInboundHandlerAdapter {
        private final Key key;
        private final int maxBodyBytes;
        private final Promise<FullHttpResponse> result;

        H2Response(Key key, int maxBodyBytes, Promise<FullHttpResponse> result) {
            this.key = key;
            this.maxBodyBytes = maxBodyBytes;
            this.result = result;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (!(msg instanceof FullHttpResponse response)) {
                ReferenceCountUtil.release(msg);
                return;
            }
            UpstreamFailure malformed = malformed(response, "HTTP/2");
            if (malformed != null) {
                result.tryFailure(malformed);
                ctx.close();
                return;
            }
            // What the HTTP/2-to-HTTP/1 conversion adds for itself is not the server's.
            response.headers().remove(HttpConversionUtil.ExtensionHeaderNames.STREAM_ID.text());
            response.headers().remove(HttpConversionUtil.ExtensionHeaderNames.SCHEME.text());
            if (!result.trySuccess(response)) {
                response.release();
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            result.tryFailure(new UpstreamFailure(UpstreamFailure.Kind.RESET,
                    "upstream stream reset before the response"));
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            result.tryFailure(failure(cause, maxBodyBytes));
            LOG.debugf("upstream %s: %s", key.target(), cause.toString());
            ctx.close();
        }
    }

    @Override
    public void close() {
        idle.values().forEach(d -> d.forEach(c -> c.stream.close()));
        idle.clear();
        multiplexed.values().forEach(m -> {
            if (m.tunnel != null) {
                m.tunnel.close();
            }
        });
        multiplexed.clear();
    }
}
