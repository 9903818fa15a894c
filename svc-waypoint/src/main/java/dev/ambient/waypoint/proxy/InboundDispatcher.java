package dev.ambient.waypoint.proxy;

import dev.ambient.hbone.Authority;
import dev.ambient.hbone.HboneHeaders;
import dev.ambient.hbone.HboneLimit;
import dev.ambient.hbone.HboneRequest;
import dev.ambient.hbone.HboneRequestHandler;
import dev.ambient.hbone.HboneServerInitializer;
import dev.ambient.hbone.PoolKey;
import dev.ambient.identity.SpiffeId;
import dev.ambient.net.PendingReads;
import dev.ambient.net.SocketRelay;
import dev.ambient.proto.l7.TcpRoute;
import dev.ambient.proto.l7.WeightedBackend;
import dev.ambient.proto.workload.OutlierDetection;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.waypoint.authz.L7Authorizer;
import dev.ambient.waypoint.http.DataPath;
import dev.ambient.waypoint.http.HttpDeadlines;
import dev.ambient.waypoint.http.Http1Server;
import dev.ambient.waypoint.http.Http2StreamServer;
import dev.ambient.waypoint.http.Tunnel;
import dev.ambient.waypoint.identity.WaypointIdentity;
import dev.ambient.waypoint.route.RouteTable;
import dev.ambient.waypoint.state.WaypointState;
import dev.ambient.waypoint.state.WaypointState.Endpoint;
import dev.ambient.waypoint.telemetry.AccessLog;
import dev.ambient.waypoint.telemetry.HboneRefusals;
import dev.ambient.hbone.ConnectionPool;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.EventLoop;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.handler.codec.http2.Http2MultiplexCodecBuilder;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.AttributeKey;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.netty.util.concurrent.Promise;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.cert.Certificate;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLPeerUnverifiedException;
import org.jboss.logging.Logger;

/**
 * Each HBONE CONNECT to the waypoint: the {@code :authority} must be a service VIP (or a workload
 * address) this waypoint serves, else 400. What the tunnel carries follows the service port's
 * declared protocol ({@link PortProtocol}): HTTP ports go through the HTTP data path request by
 * request (HTTP/1.1 or h2c); other declared ports are TCP, authorized as TCP before the CONNECT is
 * answered (401 when denied) and answered 200 only once the endpoint's tunnel is up (503 when it
 * cannot be); an undeclared port is sniffed, and a stream found to be TCP is authorized as TCP
 * then. TCP goes to an endpoint of the service through HBONE, with the waypoint's identity. The client's address is the HBONE connection's: a client's Forwarded
 * header is never believed here.
 */
public final class InboundDispatcher implements HboneRequestHandler {

    private static final Logger LOG = Logger.getLogger(InboundDispatcher.class);
    /** The SHA-256 of the peer certificate of an HBONE connection, computed once per connection. */
    private static final AttributeKey<String> PEER_CERT_SHA256 = AttributeKey.valueOf("waypoint-peer-cert-sha256");
    /**
     * What a sniffed TCP tunnel's client may send while its endpoint is dialled (more closes it):
     * 4 MiB, as the holders of the ztunnel's tunnels and of a sniffed tunnel before this one.
     */
    private static final long SNIFFED_HOLD_BYTES = 4L << 20;
    /**
     * h2c inside a tunnel: 100 streams, and extended CONNECT (RFC 8441) for WebSocket over HTTP/2.
     * Windows stay at HTTP/2's 64 KiB: what a stream the endpoint does not drain may hold.
     */
    private static final Http2Settings H2C_SETTINGS = Http2Settings.defaultSettings().maxConcurrentStreams(100)
            .connectProtocolEnabled(true);

    private final DataPath path;
    private final ConnectionPool hbone;
    private final WaypointIdentity identity;
    private final int upstreamHbonePort;
    private final ExternalDialer external;
    private final HboneRefusals refusals;
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
            ExternalDialer external, HboneRefusals refusals) {
        this.external = external;
        this.refusals = refusals;
        this.path = path;
        this.hbone = hbone;
        this.identity = identity;
        this.upstreamHbonePort = upstreamHbonePort;
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
        InetSocketAddress source = request.connectionSource();
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
        Workload sourceWorkload = path.sources.of(state, source.getAddress(), request.peer(),
                request.headers().get(HboneHeaders.BAGGAGE)).orElse(null);
        PortProtocol protocol = PortProtocol.of(service, target.getPort());
        if (protocol == PortProtocol.TCP) {
            Tunnel tunnel = new Tunnel(service, workload, target, request.peer(), source, sourceWorkload, null);
            L7Authorizer.Decision d = authorizeTcp(tunnel);
            if (!d.allowed()) {
                request.reject(401, "denied");
                AccessLog.connection("tcp", Authority.format(source), peer, tunnel.describe(),
                        "refused 401: " + d.reason());
                return;
            }
            forwardTcp(tunnel, request);
            return;
        }
        Http2StreamChannel stream = accept(request);
        Tunnel tunnel = new Tunnel(service, workload, target, request.peer(), source, sourceWorkload,
                peerCertificateSha256(stream.parent()));
        HttpDeadlines deadlines = new HttpDeadlines(path.limits.deadlines(), stream, tunnel);
        stream.pipeline().addLast(HttpDeadlines.NAME, deadlines);
        stream.pipeline().addLast("sniffer", new ProtocolSniffer(protocol == PortProtocol.UNDECLARED,
                path.limits.sniffTimeout(), (ctx, sniffed) -> install(ctx, sniffed, tunnel, stream, deadlines)));
        PendingReads.release(stream);
        stream.config().setAutoRead(true);
    }

    /** Answers 200; the stream's bytes come out of {@link StreamBytes}. */
    private Http2StreamChannel accept(HboneRequest request) {
        Http2StreamChannel stream = request.acceptStream();
        lastAcceptNanos = System.nanoTime();
        openTunnels.incrementAndGet();
        stream.closeFuture().addListener(f -> openTunnels.decrementAndGet());
        stream.pipeline().addLast(StreamBytes.NAME, new StreamBytes());
        return stream;
    }

    private L7Authorizer.Decision authorizeTcp(Tunnel t) {
        return path.authorizer.evaluate(path.store.current().policies(), t.service(), new L7Authorizer.Request(
                t.peer(), t.source().getAddress(), t.target().getAddress(), t.target().getPort(), null));
    }

    /** Hex SHA-256 of the peer's certificate (for x-forwarded-client-cert), once per HBONE connection. */
    private static String peerCertificateSha256(Channel connection) {
        String cached = connection.attr(PEER_CERT_SHA256).get();
        if (cached != null) {
            return cached;
        }
        SslHandler ssl = connection.pipeline().get(SslHandler.class);
        try {
            Certificate[] chain = ssl == null ? null : ssl.engine().getSession().getPeerCertificates();
            if (chain == null || chain.length == 0) {
                return null;
            }
            String hash = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(chain[0].getEncoded()));
            connection.attr(PEER_CERT_SHA256).set(hash);
            return hash;
        } catch (GeneralSecurityException | SSLPeerUnverifiedException e) {
            return null;
        }
    }

    private void install(ChannelHandlerContext ctx, ProtocolSniffer.Protocol protocol, Tunnel tunnel,
            Http2StreamChannel stream, HttpDeadlines deadlines) {
        ChannelPipeline p = ctx.pipeline();
        String after = ctx.name();
        switch (protocol) {
            case HTTP1 -> {
                p.addAfter(after, Http1Server.CODEC, Http1Server.codec());
                p.addAfter(Http1Server.CODEC, Http1Server.OBSERVER, deadlines.observer());
                p.addAfter(Http1Server.OBSERVER, Http1Server.NAME, new Http1Server(path, tunnel, stream, deadlines));
            }
            case HTTP2 -> {
                deadlines.http2();
                // Http2MultiplexHandler takes itself for a client unless its channel's parent is a
                // ServerChannel, which a tunnel's stream is not, and then refuses stream 1 (the
                // first stream of nearly every client) as a misconfigured upgrade. The combined
                // codec knows it serves from its own connection.
                @SuppressWarnings("deprecation")
                var codec = Http2MultiplexCodecBuilder.forServer(new ChannelInitializer<Http2StreamChannel>() {
                    @Override
                    protected void initChannel(Http2StreamChannel child) {
                        deadlines.streamOpened(child);
                        Http2StreamServer.install(child, path, tunnel);
                    }
                }).initialSettings(H2C_SETTINGS).build();
                p.addAfter(after, "h2-codec", codec);
                h2cTunnels.add(stream);
                if (draining) {
                    HboneServerInitializer.goAway(stream);
                }
            }
            case TCP -> {
                p.remove(deadlines);
                L7Authorizer.Decision d = authorizeTcp(tunnel);
                if (!d.allowed()) {
                    AccessLog.connection("tcp", Authority.format(tunnel.source()), tunnel.peer().uri(),
                            tunnel.describe(), "closed: sniffed as TCP and " + d.reason());
                    stream.close();
                    return;
                }
                stream.config().setAutoRead(false);
                Promise<Void> done = stream.eventLoop().newPromise();
                SniffedTcpHold hold = new SniffedTcpHold(stream, SNIFFED_HOLD_BYTES, done);
                p.addAfter(after, SniffedTcpHold.NAME, hold);
                forwardSniffedTcp(tunnel, stream, hold, done);
            }
        }
        LOG.debugf("tunnel from %s for %s carries %s", tunnel.source(), tunnel.describe(), protocol);
    }

    /**
     * A CONNECT to a port declared TCP: answered only once the endpoint's tunnel is up (503 if it
     * cannot be), as the ztunnel answers once it has dialled the workload. Until then the CONNECT is
     * in setup, so a client that resets its CONNECTs as fast as it sends them spends its rapid-reset
     * budget, not a tunnel to an endpoint's ztunnel per CONNECT. What the client sent early stays in
     * the stream's PendingReads until then.
     */
    private void forwardTcp(Tunnel tunnel, HboneRequest request) {
        tcpTunnels.incrementAndGet();
        dialEndpoint(tunnel, request.eventLoop()).addListener(f -> {
            if (!f.isSuccess()) {
                tcpTunnels.decrementAndGet();
                request.reject(503, f.cause().getMessage());
                return;
            }
            Upstream upstream = (Upstream) f.getNow();
            if (!request.isOpen()) {
                tcpTunnels.decrementAndGet();
                upstream.stream().close();
                request.abandon();
                AccessLog.connection("tcp", Authority.format(tunnel.source()), tunnel.peer().uri(),
                        upstream.target(), "closed: the client left while its endpoint was dialled");
                return;
            }
            splice(tunnel, accept(request), null, upstream, null);
        });
    }

    /**
     * A tunnel found to carry TCP by sniffing: answered already, so the client may have sent all it
     * had, and even ended cleanly and let go of its stream, by the time the endpoint is up; the hold
     * has what it sent. Completes {@code done} once the tunnel is over.
     */
    private void forwardSniffedTcp(Tunnel tunnel, Http2StreamChannel inbound, SniffedTcpHold hold,
            Promise<Void> done) {
        tcpTunnels.incrementAndGet();
        dialEndpoint(tunnel, inbound.eventLoop()).addListener(f -> {
            if (!f.isSuccess()) {
                hold.discard();
                tcpTunnels.decrementAndGet();
                done.trySuccess(null);
                inbound.close();
                return;
            }
            Upstream upstream = (Upstream) f.getNow();
            if (hold.gone()) {
                hold.discard();
                tcpTunnels.decrementAndGet();
                done.trySuccess(null);
                inbound.close();
                upstream.stream().close();
                AccessLog.connection("tcp", Authority.format(tunnel.source()), tunnel.peer().uri(),
                        upstream.target(), "closed: " + hold.goneReason());
                return;
            }
            splice(tunnel, inbound, hold, upstream, done);
        });
    }

    /** A tunnel to an endpoint, opened for one client tunnel. */
    private record Upstream(Channel stream, String target, long startNanos) {
    }

    /**
     * Opens a tunnel through HBONE, with the waypoint's identity, to an endpoint of the addressed
     * service (or the addressed workload); completes on {@code loop}. A failure is logged here and
     * carries the reason.
     */
    private Future<Upstream> dialEndpoint(Tunnel tunnel, EventLoop loop) {
        Promise<Upstream> result = loop.newPromise();
        WaypointState state = path.store.current();
        int port = tunnel.target().getPort();
        Endpoint endpoint;
        List<Endpoint> siblings;
        OutlierDetection outliers = null;
        String src = Authority.format(tunnel.source());
        String peer = tunnel.peer().uri();
        if (tunnel.service() != null) {
            Service service = tunnel.service();
            int servicePort = port;
            // A TCPRoute of the service: a backend by weight, then an endpoint of it.
            Optional<TcpRoute> route = state.routes(service).flatMap(t -> RouteTable.tcpRoute(t, port));
            if (route.isPresent()) {
                Optional<WeightedBackend> backend = RouteTable.pickBackend(route.get().getBackendsList());
                service = backend.flatMap(b -> state.serviceByKey(b.getService())).orElse(null);
                if (service == null) {
                    String why = "TCPRoute " + route.get().getName() + " has no backend "
                            + (backend.isEmpty() ? "with weight" : backend.get().getService() + " known");
                    AccessLog.connection("tcp", src, peer, tunnel.describe(), "closed: " + why);
                    return result.setFailure(new IllegalStateException(why));
                }
                servicePort = backend.get().getPort() == 0 ? port : backend.get().getPort();
            }
            siblings = state.endpoints(service, servicePort);
            outliers = service.hasOutlierDetection() ? service.getOutlierDetection() : null;
            endpoint = path.balancer.pick(WaypointState.key(service), siblings, Set.of());
        } else {
            endpoint = new Endpoint(tunnel.workload(), tunnel.target().getAddress(), port);
            siblings = List.of(endpoint);
        }
        WaypointIdentity.TlsMaterial tls = identity.current();
        OutlierDetection detection = outliers;
        if (endpoint != null && endpoint.external()) {
            // Outside the mesh: dialled directly, named in the log as it was known (a name or an address).
            long start = System.nanoTime();
            external.dial(endpoint, loop).addListener(f -> loop.execute(() -> {
                if (f.isSuccess()) {
                    result.setSuccess(new Upstream((Channel) f.getNow(), endpoint.describe(), start));
                    return;
                }
                path.balancer.outcome(endpoint, siblings, detection, 0, f.cause().getMessage());
                AccessLog.connection("tcp", src, peer, endpoint.describe(), "closed: " + f.cause().getMessage());
                result.setFailure(f.cause());
            }));
            return result;
        }
        if (endpoint == null || tls == null) {
            String why = endpoint == null ? "no healthy endpoint" : "no certificate";
            AccessLog.connection("tcp", src, peer, tunnel.describe(), "closed: " + why);
            return result.setFailure(new IllegalStateException(why));
        }
        Workload w = endpoint.workload();
        SpiffeId expected = new SpiffeId(w.getTrustDomain().isEmpty() ? path.trustDomain : w.getTrustDomain(),
                w.getNamespace(), w.getServiceAccount().isEmpty() ? "default" : w.getServiceAccount());
        InetSocketAddress target = new InetSocketAddress(endpoint.address(), endpoint.port());
        long start = System.nanoTime();
        hbone.open(new PoolKey(identity.id(), new InetSocketAddress(endpoint.address(), upstreamHbonePort),
                Set.of(expected)), tls.client(), HboneHeaders.connect(target, tunnel.source(), null), null)
                .addListener(f -> loop.execute(() -> {
                    if (f.isSuccess()) {
                        result.setSuccess(new Upstream((Http2StreamChannel) f.getNow(), Authority.format(target), start));
                        return;
                    }
                    path.balancer.outcome(endpoint, siblings, detection, 0, f.cause().getMessage());
                    AccessLog.connection("tcp", src, peer, Authority.format(target), "closed: " + f.cause().getMessage());
                    result.setFailure(f.cause());
                }));
        return result;
    }

    /**
     * Relays between the client's tunnel and the endpoint's until both are closed; then the tunnel
     * no longer counts (one side may outlive the other while its last bytes go out) and gets its
     * access-log line.
     */
    private void splice(Tunnel tunnel, Http2StreamChannel inbound, SniffedTcpHold held, Upstream up,
            Promise<Void> done) {
        Channel upstream = up.stream();
        upstream.eventLoop().execute(() -> {
            if (upstream instanceof Http2StreamChannel) {
                upstream.pipeline().addLast(StreamBytes.NAME, new StreamBytes());
            }
            AtomicLong sent = new AtomicLong();
            AtomicLong received = new AtomicLong();
            java.time.Duration idle = path.limits.tcpIdleTimeout();
            // TcpSplice ends each side when the other ends: after the bytes still on their way, or
            // at once for an abort. A close here would throw those bytes away.
            java.util.function.BooleanSupplier idledOut = TcpSplice.join(inbound, held, upstream, sent, received,
                    idle);
            SocketRelay.bothClosed(inbound, upstream).addListener(x -> {
                tcpTunnels.decrementAndGet();
                if (done != null) {
                    done.trySuccess(null);
                }
                AccessLog.connection("tcp", Authority.format(tunnel.source()), tunnel.peer().uri(), up.target(),
                        String.format("closed%s%s: sent=%d received=%d %.1fms", held != null && held.endedDuringDial()
                                ? " after the client ended during the dial" : "", idledOut.getAsBoolean()
                                ? " after the idle timeout (" + idle.toMillis() + " ms)" : "", sent.get(),
                                received.get(), (System.nanoTime() - up.startNanos()) / 1e6));
            });
        });
    }

    @Override
    public void refused(SocketAddress remote, String reason) {
        AccessLog.connection("hbone", String.valueOf(remote), "-", "-", "refused: " + reason);
    }

    @Override
    public void limitReached(SocketAddress remote, HboneLimit limit, String detail) {
        refusals.count(limit);
        refused(remote, limit.tag() + ": " + detail);
    }

    /** A refusal whose log line is held back or written elsewhere: counted all the same. */
    @Override
    public void limitCounted(SocketAddress remote, HboneLimit limit) {
        refusals.count(limit);
    }
}
