package dev.ambient.waypoint.proxy;

import dev.ambient.hbone.ConnectionPool;
import dev.ambient.hbone.HboneHeaders;
import dev.ambient.hbone.PoolKey;
import dev.ambient.identity.SpiffeId;
import dev.ambient.net.PendingReads;
import dev.ambient.waypoint.identity.WaypointIdentity;
import dev.ambient.waypoint.state.WaypointState.Endpoint;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.net.InetSocketAddress;
import java.util.Deque;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicInteger;
import org.jboss.logging.Logger;

/**
 * HTTP/1.1 to endpoints through HBONE: each upstream connection is one CONNECT stream to the
 * endpoint's node ztunnel ({@code :authority} = pod ip:targetPort, the server must prove the
 * workload's identity, we present the waypoint's), kept alive and reused for later requests to
 * the same endpoint; the CONNECT streams themselves share pooled mTLS HTTP/2 connections. Pools
 * are per event loop (as Envoy's per-worker pools): a request and its upstream connection live
 * on the same thread, so no request hops between threads.
 */
public final class UpstreamClient implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(UpstreamClient.class);

    private record Key(InetSocketAddress target, SpiffeId expected, EventLoop loop) {
    }

    private final java.util.function.Function<EventLoop, ConnectionPool> pools;
    private final WaypointIdentity identity;
    private final int hbonePort;
    private final int maxBodyBytes;
    private final int maxIdle;
    private final Map<Key, Deque<Connection>> idle = new ConcurrentHashMap<>();
    private final AtomicInteger open = new AtomicInteger();

    /** @param pools the HBONE connection pool dialling on a given event loop */
    public UpstreamClient(java.util.function.Function<EventLoop, ConnectionPool> pools, WaypointIdentity identity,
            int hbonePort, int maxBodyBytes, int maxIdle) {
        this.pools = pools;
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
    public Promise<FullHttpResponse> send(Endpoint endpoint, SpiffeId expected, FullHttpRequest request, EventLoop loop) {
        Promise<FullHttpResponse> result = loop.newPromise();
        Key key = new Key(new InetSocketAddress(endpoint.address(), endpoint.port()), expected, loop);
        Deque<Connection> free = idle.get(key);
        Connection c;
        while (free != null && (c = free.pollFirst()) != null) {
            if (c.stream.isActive()) {
                c.send(request, result);
                return result;
            }
        }
        WaypointIdentity.TlsMaterial tls = identity.current();
        if (tls == null) {
            ReferenceCountUtil.release(request);
            result.tryFailure(new UpstreamFailure(UpstreamFailure.Kind.CONNECT, "waypoint has no certificate yet"));
            return result;
        }
        PoolKey poolKey = new PoolKey(identity.id(), new InetSocketAddress(endpoint.address(), hbonePort),
                Set.of(expected));
        Future<Http2StreamChannel> opened = pools.apply(loop).open(poolKey, tls.client(),
                HboneHeaders.connect(key.target(), null, null), null);
        opened.addListener(f -> {
            if (!f.isSuccess()) {
                ReferenceCountUtil.release(request);
                result.tryFailure(new UpstreamFailure(UpstreamFailure.Kind.CONNECT, "HBONE to " + endpoint.uid()
                        + " at " + key.target() + ": " + f.cause().getMessage()));
                return;
            }
            Http2StreamChannel stream = (Http2StreamChannel) f.getNow();
            stream.eventLoop().execute(() -> {
                Connection conn = new Connection(key, stream);
                stream.pipeline().addLast(StreamBytes.NAME, new StreamBytes());
                stream.pipeline().addLast(new HttpClientCodec());
                stream.pipeline().addLast(new HttpObjectAggregator(maxBodyBytes));
                stream.pipeline().addLast(conn);
                open.incrementAndGet();
                stream.closeFuture().addListener(x -> open.decrementAndGet());
                PendingReads.release(stream);
                stream.config().setAutoRead(true);
                conn.send(request, result);
            });
        });
        return result;
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
        final Http2StreamChannel stream;
        private Promise<FullHttpResponse> pending; // stream's loop only
        private boolean reusable = true;

        Connection(Key key, Http2StreamChannel stream) {
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
            if (cause instanceof TooLongFrameException) {
                fail(UpstreamFailure.Kind.TOO_LARGE, "response larger than " + maxBodyBytes + " bytes");
            } else {
                fail(UpstreamFailure.Kind.RESET, "upstream error: " + cause.getMessage());
            }
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

    @Override
    public void close() {
        idle.values().forEach(d -> d.forEach(c -> c.stream.close()));
        idle.clear();
    }
}
