package dev.ambient.waypoint.proxy;

import dev.ambient.hbone.Authority;
import dev.ambient.hbone.HboneHeaders;
import dev.ambient.hbone.HboneRequest;
import dev.ambient.hbone.HboneRequestHandler;
import dev.ambient.hbone.HboneServerInitializer;
import dev.ambient.hbone.PoolKey;
import dev.ambient.identity.SpiffeId;
import dev.ambient.net.PendingReads;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.waypoint.http.DataPath;
import dev.ambient.waypoint.http.HttpRequestHandler;
import dev.ambient.waypoint.http.Tunnel;
import dev.ambient.waypoint.identity.WaypointIdentity;
import dev.ambient.waypoint.state.WaypointState;
import dev.ambient.waypoint.state.WaypointState.Endpoint;
import dev.ambient.waypoint.telemetry.AccessLog;
import dev.ambient.hbone.ConnectionPool;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http2.Http2MultiplexCodecBuilder;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.jboss.logging.Logger;

/**
 * Each HBONE CONNECT to the waypoint: the {@code :authority} must be a service VIP (or a workload
 * address) this waypoint serves, else 400. Accepted tunnels are sniffed: HTTP/1.1 and h2c go
 * through the HTTP data path request by request; anything else is forwarded as TCP to an endpoint
 * of the service, through HBONE, with the waypoint's identity.
 */
public final class InboundDispatcher implements HboneRequestHandler {

    private static final Logger LOG = Logger.getLogger(InboundDispatcher.class);

    private final DataPath path;
    private final ConnectionPool hbone;
    private final WaypointIdentity identity;
    private final int upstreamHbonePort;
    private final int maxBodyBytes;
    private final Duration sniffTimeout;
    private final AtomicInteger openTunnels = new AtomicInteger();
    private final AtomicInteger tcpTunnels = new AtomicInteger();
    /** Tunnels carrying h2c: a drain tells their clients, too, to open no new stream. */
    private final ChannelGroup h2cTunnels = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);
    private volatile boolean draining;
    private volatile long lastAcceptNanos = System.nanoTime();

    /** Draining: GOAWAY inside every h2c tunnel now and in those sniffed from now on. */
    public void goAway() {
        draining = true;
        h2cTunnels.forEach(HboneServerInitializer::goAway);
    }

    public InboundDispatcher(DataPath path, ConnectionPool hbone, WaypointIdentity identity, int upstreamHbonePort,
            int maxBodyBytes, Duration sniffTimeout) {
        this.path = path;
        this.hbone = hbone;
        this.identity = identity;
        this.upstreamHbonePort = upstreamHbonePort;
        this.maxBodyBytes = maxBodyBytes;
        this.sniffTimeout = sniffTimeout;
    }

    /** Tunnels open now (HTTP connections and TCP streams). */
    public int openTunnels() {
        return openTunnels.get();
    }

    /** When the last tunnel was accepted (System.nanoTime): a drain lets a new tunnel send its first request. */
    public long lastAcceptNanos() {
        return lastAcceptNanos;
    }

    /** Tunnels forwarded as TCP open now: a drain waits for them, not for idle HTTP connections. */
    public int tcpTunnels() {
        return tcpTunnels.get();
    }

    @Override
    public void handle(HboneRequest request) {
        InetSocketAddress source = request.forwardedFor().orElse(request.connectionSource());
        String peer = request.peer().uri();
        WaypointState state = path.store.current();
        InetSocketAddress target = request.target();
        Service service = state.serviceByAddress(target.getAddress()).orElse(null);
        Workload workload = service == null ? state.workloadByAddress(target.getAddress()).orElse(null) : null;
        if (service == null && workload == null) {
            request.reject(400, "not served here");
            AccessLog.connection("tunnel", Authority.format(source), peer, Authority.format(target),
                    "refused 400: no service or workload of this waypoint at that address");
            return;
        }
        if (service != null && service.getPortsList().stream().noneMatch(p -> p.getServicePort() == target.getPort())) {
            request.reject(400, "no such port");
            AccessLog.connection("tunnel", Authority.format(source), peer, Authority.format(target),
                    "refused 400: service " + service.getHostname() + " has no port " + target.getPort());
            return;
        }
        Workload sourceWorkload = state.workloadByAddress(source.getAddress())
                .or(() -> dev.ambient.waypoint.telemetry.Baggage.sourceWorkload(
                        request.headers().get(HboneHeaders.BAGGAGE)))
                .orElse(null);
        Tunnel tunnel = new Tunnel(service, workload, target, request.peer(), source, sourceWorkload);
        Http2StreamChannel stream = request.acceptStream();
        lastAcceptNanos = System.nanoTime();
        openTunnels.incrementAndGet();
        stream.closeFuture().addListener(f -> openTunnels.decrementAndGet());
        ChannelPipeline p = stream.pipeline();
        p.addLast(StreamBytes.NAME, new StreamBytes());
        p.addLast("sniffer", new ProtocolSniffer(sniffTimeout, (ctx, protocol) -> install(ctx, protocol, tunnel,
                stream)));
        PendingReads.release(stream);
        stream.config().setAutoRead(true);
    }

    private void install(ChannelHandlerContext ctx, ProtocolSniffer.Protocol protocol, Tunnel tunnel,
            Http2StreamChannel stream) {
        ChannelPipeline p = ctx.pipeline();
        String after = ctx.name();
        switch (protocol) {
            case HTTP1 -> {
                p.addAfter(after, "http-codec", new HttpServerCodec());
                p.addAfter("http-codec", "http-aggregator", new HttpObjectAggregator(maxBodyBytes));
                p.addAfter("http-aggregator", "http-handler", new HttpRequestHandler(path, tunnel, true, stream));
            }
            case HTTP2 -> {
                // Http2MultiplexHandler takes itself for a client unless its channel's parent is a
                // ServerChannel, which a tunnel's stream is not, and then refuses stream 1 (the
                // first stream of nearly every client) as a misconfigured upgrade. The combined
                // codec knows it serves from its own connection.
                @SuppressWarnings("deprecation")
                var codec = Http2MultiplexCodecBuilder.forServer(new ChannelInitializer<Http2StreamChannel>() {
                    @Override
                    protected void initChannel(Http2StreamChannel child) {
                        child.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(true),
                                new HttpObjectAggregator(maxBodyBytes),
                                new HttpRequestHandler(path, tunnel, false, null));
                    }
                }).initialSettings(Http2Settings.defaultSettings().maxConcurrentStreams(100)).build();
                p.addAfter(after, "h2-codec", codec);
                h2cTunnels.add(stream);
                if (draining) {
                    HboneServerInitializer.goAway(stream);
                }
            }
            case TCP -> {
                tcpTunnels.incrementAndGet();
                stream.closeFuture().addListener(f -> tcpTunnels.decrementAndGet());
                stream.config().setAutoRead(false);
                p.addAfter(after, PendingReads.NAME, new PendingReads(4L << 20));
                forwardTcp(tunnel, stream);
            }
        }
        LOG.debugf("tunnel from %s for %s carries %s", tunnel.source(), tunnel.describe(), protocol);
    }

    /** Raw TCP to an endpoint of the addressed service (or the addressed workload), through HBONE. */
    private void forwardTcp(Tunnel tunnel, Http2StreamChannel inbound) {
        WaypointState state = path.store.current();
        int port = tunnel.target().getPort();
        Endpoint endpoint;
        if (tunnel.service() != null) {
            endpoint = path.balancer.pick(WaypointState.key(tunnel.service()),
                    state.endpoints(tunnel.service(), port), Set.of());
        } else {
            endpoint = new Endpoint(tunnel.workload(), tunnel.target().getAddress(), port);
        }
        String src = Authority.format(tunnel.source());
        String peer = tunnel.peer().uri();
        WaypointIdentity.TlsMaterial tls = identity.current();
        if (endpoint == null || tls == null) {
            AccessLog.connection("tcp", src, peer, tunnel.describe(),
                    endpoint == null ? "closed: no healthy endpoint" : "closed: no certificate");
            inbound.close();
            return;
        }
        Workload w = endpoint.workload();
        SpiffeId expected = new SpiffeId(w.getTrustDomain().isEmpty() ? path.trustDomain : w.getTrustDomain(),
                w.getNamespace(), w.getServiceAccount().isEmpty() ? "default" : w.getServiceAccount());
        InetSocketAddress target = new InetSocketAddress(endpoint.address(), endpoint.port());
        long start = System.nanoTime();
        hbone.open(new PoolKey(identity.id(), new InetSocketAddress(endpoint.address(), upstreamHbonePort),
                Set.of(expected)), tls.client(), HboneHeaders.connect(target, tunnel.source(), null), null)
                .addListener(f -> {
                    if (!f.isSuccess()) {
                        path.balancer.failed(endpoint, java.util.List.of(endpoint), f.cause().getMessage());
                        AccessLog.connection("tcp", src, peer, Authority.format(target),
                                "closed: " + f.cause().getMessage());
                        inbound.close();
                        return;
                    }
                    Http2StreamChannel upstream = (Http2StreamChannel) f.getNow();
                    upstream.eventLoop().execute(() -> {
                        upstream.pipeline().addLast(StreamBytes.NAME, new StreamBytes());
                        AtomicLong sent = new AtomicLong();
                        AtomicLong received = new AtomicLong();
                        TcpSplice.join(inbound, upstream, sent, received);
                        inbound.closeFuture().addListener(x -> upstream.close());
                        upstream.closeFuture().addListener(x -> {
                            inbound.close();
                            AccessLog.connection("tcp", src, peer, Authority.format(target), String.format(
                                    "closed: sent=%d received=%d %.1fms", sent.get(), received.get(),
                                    (System.nanoTime() - start) / 1e6));
                        });
                    });
                });
    }

    @Override
    public void refused(SocketAddress remote, String reason) {
        AccessLog.connection("hbone", String.valueOf(remote), "-", "-", "refused: " + reason);
    }
}
