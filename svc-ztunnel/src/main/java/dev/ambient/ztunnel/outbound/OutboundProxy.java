package dev.ambient.ztunnel.outbound;

import dev.ambient.hbone.HboneException;
import dev.ambient.hbone.HboneHeaders;
import dev.ambient.hbone.TunnelRelay;
import dev.ambient.identity.SpiffeId;
import dev.ambient.net.PendingReads;
import dev.ambient.net.SocketMark;
import dev.ambient.net.SocketRelay;
import dev.ambient.net.Transport;
import dev.ambient.proto.workload.Workload;
import dev.ambient.ztunnel.dns.HostResolver;
import dev.ambient.ztunnel.identity.WorkloadCertificates;
import dev.ambient.ztunnel.identity.WorkloadIdentity;
import dev.ambient.ztunnel.metrics.AccessLog;
import dev.ambient.ztunnel.metrics.ConnectionLabels;
import dev.ambient.ztunnel.metrics.TrafficMetrics;
import dev.ambient.hbone.ConnectionPool;
import dev.ambient.hbone.PoolKey;
import dev.ambient.ztunnel.inbound.WorkloadDialer;
import dev.ambient.ztunnel.inpod.SocketNamespace;
import dev.ambient.ztunnel.state.WorkloadStore;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http2.Http2StreamChannel;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;

/**
 * Outbound: a local workload's connection to an original destination. Routes it, opens the
 * upstream (a pooled HBONE stream presenting the source workload's certificate, or plain TCP),
 * and only then lets the caller answer its client, so a refusal can be reported precisely.
 */
public final class OutboundProxy {

    /** An upstream that is ready; {@link #relay} joins it to the client connection. */
    public interface Established {
        Route route();

        CompletableFuture<Void> relay(Channel client);
    }

    /** Why an outbound connection could not be set up; {@code status} is HBONE's, 0 if none. */
    public static final class OutboundException extends RuntimeException {
        private final int status;

        public OutboundException(int status, String reason) {
            super(reason);
            this.status = status;
        }

        public int status() {
            return status;
        }
    }

    private final WorkloadStore store;
    private final OutboundRouter router;
    private final WorkloadCertificates certificates;
    private final ConnectionPool pool;
    private final TrafficMetrics metrics;
    private final Transport transport;
    private final String trustDomain;
    private final int connectTimeoutMillis;
    private final int socketMark;
    private final boolean preserveSourceIp;
    private final SocketNamespace netns;
    private volatile HostResolver resolver;

    public OutboundProxy(WorkloadStore store, OutboundRouter router, WorkloadCertificates certificates,
            ConnectionPool pool, TrafficMetrics metrics, Transport transport, String trustDomain,
            int connectTimeoutMillis, int socketMark, boolean preserveSourceIp) {
        this(store, router, certificates, pool, metrics, transport, trustDomain, connectTimeoutMillis, socketMark,
                preserveSourceIp, SocketNamespace.HOST);
    }

    /**
     * @param pool this source's pool: in-pod, each pod has its own, so pooled connections leave from
     *        the pod's namespace with the pod's address
     * @param preserveSourceIp HBONE connections leave from the client's own address where it can be
     *        bound (loopback, standalone), so the receiver sees the source workload: it believes
     *        {@code Forwarded} only from a waypoint
     * @param netns where upstream sockets are created (in-pod: the pod's network namespace)
     */
    public OutboundProxy(WorkloadStore store, OutboundRouter router, WorkloadCertificates certificates,
            ConnectionPool pool, TrafficMetrics metrics, Transport transport, String trustDomain,
            int connectTimeoutMillis, int socketMark, boolean preserveSourceIp, SocketNamespace netns) {
        this.netns = netns;
        this.preserveSourceIp = preserveSourceIp;
        this.socketMark = socketMark;
        this.store = store;
        this.router = router;
        this.certificates = certificates;
        this.pool = pool;
        this.metrics = metrics;
        this.transport = transport;
        this.trustDomain = trustDomain;
        this.connectTimeoutMillis = connectTimeoutMillis;
    }

    /** Resolves the names of {@link Route.ByName} destinations (the DNS proxy's upstream); none: refused. */
    public OutboundProxy resolvingWith(HostResolver resolver) {
        this.resolver = resolver;
        return this;
    }

    /**
     * @param loop the client connection's event loop: a plain TCP upstream is dialled on it, so
     *        both sockets of a passthrough relay are served by one thread
     */
    public CompletableFuture<Established> connect(Workload source, InetSocketAddress client, InetSocketAddress dst,
            EventLoop loop) {
        long start = System.nanoTime();
        SpiffeId sourceId = WorkloadIdentity.of(source, trustDomain);
        Route route = router.route(store.current(), source, dst);
        CompletableFuture<Established> result = switch (route) {
            case Route.Refused r -> CompletableFuture.failedFuture(new OutboundException(0, r.reason()));
            case Route.Passthrough p -> passthrough(p, p.via(), source, sourceId, client, loop);
            case Route.ByName n -> byName(n, source, sourceId, client, loop);
            case Route.Hbone h -> hbone(h, source, sourceId, client, loop);
        };
        return result.whenComplete((ok, err) -> {
            if (err != null) {
                Throwable cause = err instanceof java.util.concurrent.CompletionException ? err.getCause() : err;
                int status = cause instanceof OutboundException oe ? oe.status() : 0;
                metrics.failed(labels(route, source, sourceId), status == 401 ? "DENY" : "UF");
                AccessLog.connection("outbound", client, sourceId.uri(), dst, expected(route), route.via(), 0, 0,
                        Duration.ofNanos(System.nanoTime() - start),
                        route instanceof Route.Refused ? "refused" : "failed", cause.getMessage());
            }
        });
    }

    private CompletableFuture<Established> hbone(Route.Hbone route, Workload source, SpiffeId sourceId,
            InetSocketAddress client, EventLoop loop) {
        CompletableFuture<Established> out = new CompletableFuture<>();
        certificates.forIdentity(sourceId).whenComplete((tls, err) -> {
            if (err != null) {
                out.completeExceptionally(new OutboundException(0, "no certificate for " + sourceId + ": "
                        + err.getMessage()));
                return;
            }
            var headers = HboneHeaders.connect(route.authority(), client, baggage(source));
            // A dial (when the pool has no room) creates its socket on the calling thread: run the
            // pool where this source's sockets must be born.
            InetAddress local = WorkloadDialer.keepsSource(preserveSourceIp, client, route.endpoint())
                    ? client.getAddress() : null;
            netns.create(() -> pool.open(new PoolKey(sourceId, route.endpoint(), route.expected(), local),
                    tls.client(), headers, null, loop)).whenComplete((opening, createErr) -> {
                if (createErr != null) {
                    out.completeExceptionally(new OutboundException(0, "cannot open a socket in " + netns.name()
                            + ": " + rootMessage(createErr)));
                    return;
                }
                opening.addListener(f -> {
                    if (!f.isSuccess()) {
                        int status = f.cause() instanceof HboneException he ? he.status() : 0;
                        out.completeExceptionally(new OutboundException(status, f.cause().getMessage()));
                        return;
                    }
                    Http2StreamChannel stream = (Http2StreamChannel) f.getNow();
                    out.complete(new Established() {
                        @Override
                        public Route route() {
                            return route;
                        }

                        @Override
                        public CompletableFuture<Void> relay(Channel clientChannel) {
                            long start = System.nanoTime();
                            TrafficMetrics.Connection counted = metrics.opened(labels(route, source, sourceId), true);
                            return TunnelRelay.start(stream, clientChannel, counted).thenAccept(r -> {
                                counted.closed();
                                AccessLog.connection("outbound", client, sourceId.uri(), route.authority(),
                                        expected(route), route.via(), r.intoTunnel(), r.outOfTunnel(),
                                        Duration.ofNanos(System.nanoTime() - start), r.clean() ? "ok" : "error",
                                        r.reason());
                            });
                        }
                    });
                });
            });
        });
        return out;
    }

    /** Resolves the name, checks the address as any destination, then dials it as a passthrough. */
    private CompletableFuture<Established> byName(Route.ByName route, Workload source, SpiffeId sourceId,
            InetSocketAddress client, EventLoop loop) {
        HostResolver r = resolver;
        if (r == null) {
            return CompletableFuture.failedFuture(new OutboundException(0, "no resolver for " + route.hostname()
                    + " (the DNS proxy is off)"));
        }
        return r.resolve(route.hostname()).handle((ip, err) -> {
            if (err != null) {
                throw new OutboundException(0, "cannot resolve " + route.hostname() + ": " + rootMessage(err));
            }
            InetSocketAddress target = new InetSocketAddress(ip, route.port());
            router.checkResolved(store.current(), source, target).ifPresent(refused -> {
                throw new OutboundException(0, route.hostname() + " resolved to " + ip.getHostAddress() + ": "
                        + refused.reason());
            });
            return target;
        }).thenCompose(target -> passthrough(new Route.Passthrough(target, route.destination(), route.service()),
                route.via(), source, sourceId, client, loop));
    }

    /** @param via for the access log: "passthrough", or "passthrough-dns" when the target was a name */
    private CompletableFuture<Established> passthrough(Route.Passthrough route, String via, Workload source,
            SpiffeId sourceId, InetSocketAddress client, EventLoop loop) {
        CompletableFuture<Established> out = new CompletableFuture<>();
        Bootstrap b = new Bootstrap().group(loop).channel(transport.socketChannel())
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, connectTimeoutMillis)
                .option(ChannelOption.TCP_NODELAY, true)
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        if (socketMark != 0) {
                            SocketMark.set(ch, socketMark);
                        }
                        PendingReads.install(ch, 1 << 20);
                    }
                });
        netns.create(() -> b.connect(route.target())).whenComplete((connecting, createErr) -> {
            if (createErr != null) {
                out.completeExceptionally(new OutboundException(0, "cannot open a socket in " + netns.name() + ": "
                        + rootMessage(createErr)));
                return;
            }
            connecting.addListener((ChannelFutureListener) f -> {
                if (!f.isSuccess()) {
                    out.completeExceptionally(new OutboundException(0, "connect to " + route.target()
                            + " failed: " + f.cause().getMessage()));
                    return;
                }
                netns.track(f.channel());
                Channel upstream = f.channel();
                out.complete(new Established() {
                    @Override
                    public Route route() {
                        return route;
                    }

                    @Override
                    public CompletableFuture<Void> relay(Channel clientChannel) {
                        long start = System.nanoTime();
                        TrafficMetrics.Connection counted = metrics.opened(labels(route, source, sourceId), true);
                        return SocketRelay.start(clientChannel, upstream).thenAccept(r -> {
                            counted.bytes(r.aToB(), r.bToA());
                            counted.closed();
                            AccessLog.connection("outbound", client, sourceId.uri(), route.target(), "-", via,
                                    r.aToB(), r.bToA(), Duration.ofNanos(System.nanoTime() - start),
                                    r.clean() ? "ok" : "error", r.reason());
                        });
                    }
                });
            });
        });
        return out;
    }

    private ConnectionLabels labels(Route route, Workload source, SpiffeId sourceId) {
        return switch (route) {
            case Route.Hbone h -> ConnectionLabels.of("source", source, sourceId, h.destination(),
                    h.destination() == null ? h.expected().stream().findFirst().orElse(null)
                            : WorkloadIdentity.of(h.destination(), trustDomain),
                    h.service(), true);
            case Route.Passthrough p -> ConnectionLabels.of("source", source, sourceId, p.destination(), null,
                    p.service(), false);
            case Route.ByName n -> ConnectionLabels.of("source", source, sourceId, n.destination(), null,
                    n.service(), false);
            case Route.Refused r -> ConnectionLabels.of("source", source, sourceId, null, null, null, false);
        };
    }

    private static String rootMessage(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        return c.getMessage() == null ? c.getClass().getSimpleName() : c.getMessage();
    }

    private static String expected(Route route) {
        return route instanceof Route.Hbone h ? h.expected().toString() : "-";
    }

    /** Workload metadata for the peer's telemetry (W3C baggage, the keys Istio uses). */
    private static String baggage(Workload w) {
        return "k8s.namespace.name=" + w.getNamespace()
                + ",k8s.pod.name=" + w.getName()
                + ",service.name=" + (w.getCanonicalName().isEmpty() ? w.getName() : w.getCanonicalName())
                + ",service.version=" + (w.getCanonicalRevision().isEmpty() ? "latest" : w.getCanonicalRevision());
    }
}
