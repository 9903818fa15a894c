package dev.ambient.waypoint.proxy;

import dev.ambient.hbone.ConnectionPool;
import dev.ambient.hbone.HboneHeaders;
import dev.ambient.hbone.PoolKey;
import dev.ambient.identity.SpiffeId;
import dev.ambient.net.PendingReads;
import dev.ambient.proto.workload.OriginatedTls;
import dev.ambient.waypoint.identity.WaypointIdentity;
import dev.ambient.waypoint.state.WaypointState.Endpoint;
import io.netty.channel.Channel;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * HTTP to endpoints through HBONE: each upstream connection is one CONNECT stream to the
 * endpoint's node ztunnel ({@code :authority} = pod ip:targetPort, the server must prove the
 * workload's identity, we present the waypoint's); the CONNECT streams themselves share pooled
 * mTLS HTTP/2 connections. Inside a CONNECT stream the waypoint speaks HTTP/1.1
 * ({@link Http1Upstream}: one call at a time, the connection kept for later calls to the same
 * endpoint) or HTTP/2 with prior knowledge ({@link Http2Upstream}: one connection per endpoint,
 * each call one of its streams). Calls stream both ways ({@link UpstreamCall}). Connections are per
 * event loop (as Envoy's per-worker pools): a request and its upstream connection live on the same
 * thread, so nothing here is shared between threads but the counters. An endpoint outside the
 * mesh (a ServiceEntry's) is dialled directly instead, with TLS originated if its service asks
 * ({@link ExternalDialer}); the same HTTP runs over that connection.
 */
public final class UpstreamClient implements AutoCloseable {

    /**
     * Where a connection goes, and the loop it lives on. An endpoint outside the mesh is keyed by
     * the name it was known by and the TLS originated to it.
     */
    record Key(InetSocketAddress target, SpiffeId expected, EventLoop loop, OriginatedTls tls) {
    }

    /** What one upgraded call may read before the splice takes it over (the client has not seen the 101 yet). */
    static final long MAX_EARLY_TUNNEL_BYTES = 1 << 20;

    private final ConnectionPool pool;
    private final WaypointIdentity identity;
    private final int hbonePort;
    private final int maxIdle;
    private final Duration h2IdleTimeout;
    /** Idle HTTP/1.1 connections per endpoint and loop; each loop's entries are touched by that loop only. */
    private final Map<EventLoop, Map<Key, Deque<Http1Upstream>>> idle = new ConcurrentHashMap<>();
    /** HTTP/2 connections, one per endpoint and event loop; each entry is touched by its loop only. */
    private final Map<Key, Http2Upstream> multiplexed = new ConcurrentHashMap<>();
    private final AtomicInteger open = new AtomicInteger();
    private final ExternalDialer external;

    /** @param pool the HBONE connection pool; each call's CONNECT rides a connection of the call's loop */
    public UpstreamClient(ConnectionPool pool, WaypointIdentity identity, int hbonePort,
            int maxIdle, Duration h2IdleTimeout, ExternalDialer external) {
        this.external = external;
        this.pool = pool;
        this.identity = identity;
        this.hbonePort = hbonePort;
        this.maxIdle = maxIdle;
        this.h2IdleTimeout = h2IdleTimeout;
    }

    /** Upstream HTTP connections open now (idle or busy). */
    public int openConnections() {
        return open.get();
    }

    /**
     * Starts a call to the endpoint on {@code loop} (the caller's): the listener hears
     * {@link UpstreamCall.Listener#ready()} once the head may be written, or a failure of kind
     * CONNECT. Never calls the listener before returning.
     */
    public UpstreamCall open(Endpoint endpoint, SpiffeId expected, EventLoop loop, boolean http2,
            UpstreamCall.Listener listener) {
        Key key = new Key(endpoint.address() != null ? new InetSocketAddress(endpoint.address(), endpoint.port())
                : InetSocketAddress.createUnresolved(endpoint.hostname(), endpoint.port()), expected, loop, endpoint.tls());
        if (endpoint.external() && endpoint.tls() != null && endpoint.tls().getRefusal().isEmpty()) {
            return negotiated(endpoint, key, http2, listener);
        }
        if (http2) {
            Http2Upstream m = multiplexed.get(key);
            if (m == null || !m.usable()) {
                Http2Upstream created = new Http2Upstream(key, h2IdleTimeout, this::started,
                        () -> multiplexed.remove(key));
                multiplexed.put(key, created);
                created.open(connect(endpoint, key));
                m = created;
            }
            return m.call(listener);
        }
        Http1Upstream.Call call = new Http1Upstream.Call(listener, loop);
        if (reuseIdle(key, call)) {
            return call;
        }
        connect(endpoint, key).addListener(f -> {
            if (!f.isSuccess()) {
                call.connectFailed((UpstreamFailure) f.cause());
                return;
            }
            Channel stream = (Channel) f.getNow();
            Http1Upstream conn = new Http1Upstream(key, stream, this);
            conn.install();
            started(stream);
            conn.attach(call);
        });
        return call;
    }

    /**
     * TLS originated to an endpoint outside the mesh offers h2 and http/1.1: a connection whose
     * handshake chose h2 is shared by the endpoint's calls as HTTP/2, else HTTP/1.1 runs on it (a
     * server without ALPN gets what the port declares).
     */
    private UpstreamCall negotiated(Endpoint endpoint, Key key, boolean http2, UpstreamCall.Listener listener) {
        Http2Upstream shared = multiplexed.get(key);
        if (shared != null && shared.usable()) {
            return shared.call(listener);
        }
        Http1Upstream.Call idle = new Http1Upstream.Call(listener, key.loop());
        if (reuseIdle(key, idle)) {
            return idle;
        }
        NegotiatedCall call = new NegotiatedCall(listener);
        // Heard on a later turn of the loop: a refusal fails the dial at once, and the listener must
        // not hear of it before this returns.
        external.dial(endpoint, key.loop(), true).addListener(f -> key.loop().execute(() -> {
            if (!f.isSuccess()) {
                call.failed((UpstreamFailure) f.cause());
                return;
            }
            Channel ch = (Channel) f.getNow();
            if (call.gaveUp()) {
                ch.close();
                return;
            }
            String alpn = ExternalDialer.applicationProtocol(ch);
            if (alpn == null ? http2 : alpn.equals(io.netty.handler.ssl.ApplicationProtocolNames.HTTP_2)) {
                Http2Upstream[] created = new Http2Upstream[1];
                created[0] = new Http2Upstream(key, h2IdleTimeout, this::started,
                        () -> multiplexed.remove(key, created[0]));
                multiplexed.put(key, created[0]);
                created[0].open(key.loop().newSucceededFuture(ch));
                call.chosen(created[0].call(listener));
                return;
            }
            Http1Upstream conn = new Http1Upstream(key, ch, this);
            conn.install();
            started(ch);
            Http1Upstream.Call h1 = new Http1Upstream.Call(listener, key.loop());
            call.chosen(h1);
            conn.attach(h1);
        }));
        return call;
    }

    /** Attaches the call to an idle HTTP/1.1 connection of the key's, if one is usable. */
    private boolean reuseIdle(Key key, Http1Upstream.Call call) {
        Deque<Http1Upstream> free = idleOf(key);
        for (Http1Upstream c; (c = free.pollFirst()) != null;) {
            if (c.usable()) {
                Http1Upstream reused = c;
                key.loop().execute(() -> reused.attach(call));
                return true;
            }
        }
        return false;
    }

    private Deque<Http1Upstream> idleOf(Key key) {
        return idle.computeIfAbsent(key.loop(), l -> new HashMap<>()).computeIfAbsent(key, k -> new ArrayDeque<>());
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
        Future<Http2StreamChannel> opened = pool.open(poolKey, tls.client(),
                HboneHeaders.connect(key.target(), null, null), null, key.loop());
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
    private void started(Channel stream) {
        open.incrementAndGet();
        stream.closeFuture().addListener(x -> open.decrementAndGet());
        PendingReads.release(stream);
        stream.config().setAutoRead(true);
    }

    /** A connection whose call ended cleanly: kept for the next call to its endpoint, up to max-idle-per-endpoint. */
    void release(Http1Upstream c) {
        Deque<Http1Upstream> free = idleOf(c.key);
        if (free.size() >= maxIdle) {
            c.close();
            return;
        }
        free.offerFirst(c);
    }

    /** A connection that closed (on its loop): never handed out again. */
    void forget(Http1Upstream c) {
        Map<Key, Deque<Http1Upstream>> byKey = idle.get(c.key.loop());
        Deque<Http1Upstream> free = byKey == null ? null : byKey.get(c.key);
        if (free != null) {
            free.remove(c);
        }
    }

    @Override
    public void close() {
        // Each loop closes its own idle connections (they are its alone).
        idle.forEach((loop, byKey) -> loop.execute(() -> {
            List<Http1Upstream> all = new ArrayList<>();
            byKey.values().forEach(all::addAll);
            all.forEach(Http1Upstream::close);
        }));
        List.copyOf(multiplexed.values()).forEach(Http2Upstream::close);
        multiplexed.clear();
    }
}
