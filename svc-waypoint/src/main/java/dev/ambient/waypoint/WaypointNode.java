package dev.ambient.waypoint;

import dev.ambient.controlplane.ControlPlaneEndpoint;
import dev.ambient.controlplane.MeshRootFile;
import dev.ambient.discovery.DeltaDiscoveryClient;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.hbone.ConnectionPool;
import dev.ambient.hbone.HboneAdmission;
import dev.ambient.hbone.HboneConnector;
import dev.ambient.hbone.HboneSettings;
import dev.ambient.identity.SpiffeId;
import dev.ambient.net.Transport;
import dev.ambient.proto.discovery.Node;
import dev.ambient.proto.l7.JwtRule;
import dev.ambient.proto.l7.L7Authentication;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.waypoint.authn.JwksCache;
import dev.ambient.waypoint.authn.JwtVerifier;
import dev.ambient.waypoint.authn.RequestAuthenticator;
import dev.ambient.waypoint.authz.L7Authorizer;
import dev.ambient.waypoint.extauthz.ExtAuthz;
import dev.ambient.waypoint.extauthz.MeshAuthorizerBridge;
import dev.ambient.waypoint.config.WaypointConfig;
import dev.ambient.waypoint.http.BodyBudget;
import dev.ambient.waypoint.http.HeldBodies;
import dev.ambient.waypoint.http.DataPath;
import dev.ambient.waypoint.http.HttpDeadlines;
import dev.ambient.waypoint.http.HttpLimits;
import dev.ambient.waypoint.http.RequestTarget;
import dev.ambient.waypoint.http.Mirrors;
import dev.ambient.waypoint.http.RetryBudget;
import dev.ambient.waypoint.identity.WaypointIdentity;
import dev.ambient.waypoint.proxy.ExternalDestinations;
import dev.ambient.waypoint.proxy.ExternalDialer;
import dev.ambient.waypoint.proxy.HboneListener;
import dev.ambient.waypoint.proxy.InboundDispatcher;
import dev.ambient.waypoint.proxy.UpstreamClient;
import dev.ambient.waypoint.route.LoadBalancer;
import dev.ambient.waypoint.state.StateStore;
import dev.ambient.waypoint.state.WaypointState;
import dev.ambient.waypoint.telemetry.HboneRefusals;
import dev.ambient.waypoint.telemetry.RequestMetrics;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * One waypoint assembled from its parts: identity, configuration (svc-xds stream, or filled by a
 * test), the data-plane event loops, the HBONE listener and the HTTP data path. Plain Java, so
 * tests run several waypoints and ztunnels in one JVM; {@link Waypoint} runs one inside Quarkus.
 */
public final class WaypointNode implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(WaypointNode.class);

    /** The resource types a waypoint subscribes to. */
    public static final List<String> TYPES = List.of(ResourceTypes.WORKLOAD, ResourceTypes.SERVICE,
            ResourceTypes.SERVICE_ROUTES, ResourceTypes.L7_AUTHORIZATION, ResourceTypes.L7_AUTHENTICATION);

    private final WaypointConfig config;
    private final MeterRegistry registry;
    private final StateStore store = new StateStore();
    private Transport transport;
    private WaypointIdentity identity;
    private ConnectionPool pool;
    private UpstreamClient upstream;
    private ExternalDialer external;
    private InboundDispatcher dispatcher;
    private HboneListener listener;
    private DataPath dataPath;
    private ExtAuthz extAuthz;
    private MeshAuthorizerBridge authorizerBridge;
    private DeltaDiscoveryClient xds;
    private JwksCache jwks;
    /** The Vert.x of JWKS fetches and ext_authz calls (one loop), apart from the data plane's. */
    private io.vertx.core.Vertx control;
    private volatile boolean started;
    private volatile boolean draining;

    public WaypointNode(WaypointConfig config, MeterRegistry registry) {
        this.config = config;
        this.registry = registry;
    }

    public WaypointNode start() {
        String[] gateway = config.gateway().split("/", 2);
        if (gateway.length != 2 || gateway[0].isEmpty() || gateway[1].isEmpty()) {
            throw new IllegalArgumentException("waypoint.gateway=" + config.gateway() + " must be 'namespace/name'");
        }
        SpiffeId id = new SpiffeId(config.trustDomain(), gateway[0], config.serviceAccount().orElse(gateway[1]));
        var idc = config.identity();
        // No control plane without the mounted root to verify it by: a start-up error, before anything starts.
        MeshRootFile meshRoot = config.xdsAddress().isPresent() || "ca".equals(idc.source())
                ? MeshRootFile.load(idc.rootCertFile()) : null;
        identity = switch (idc.source()) {
            case "local" -> WaypointIdentity.local(id, idc.caDir(), idc.certificateLifetime());
            case "ca" -> WaypointIdentity.fromCa(id, ControlPlaneEndpoint.of(idc.caAddress(), idc.caServerName(), meshRoot,
                    idc.tokenFile()), idc.certificateLifetime());
            default -> throw new IllegalArgumentException("waypoint.identity.source=" + idc.source()
                    + " is unknown; use 'local' or 'ca'");
        };
        identity.start();

        int threads = config.listen().threads().orElse(Runtime.getRuntime().availableProcessors());
        transport = Transport.create("waypoint-dataplane", threads);
        HboneSettings settings = new HboneSettings(HboneSettings.DEFAULTS.streamWindow(),
                HboneSettings.DEFAULTS.connectionWindow(), HboneSettings.DEFAULTS.maxFrameSize(),
                config.listen().maxStreamsPerConnection(), config.listen().limits().toLimits());
        var up = config.upstream();
        HboneConnector connector = new HboneConnector(transport, settings, (int) up.connectTimeout().toMillis(), 0);
        pool = new ConnectionPool(connector, transport.group(), up.idleTimeout());
        var http = config.http();
        HttpLimits limits = new HttpLimits(http.retryBufferBytes(), new BodyBudget(http.maxBufferedBodyBytes()),
                new HttpDeadlines.Limits(http.requestHeaderTimeout(), http.requestTimeout(), http.idleTimeout()),
                http.streamIdleTimeout(), RequestTarget.Options.parse(http.pathNormalization(), http.escapedSlashes()),
                http.sniffTimeout(), config.tcpIdleTimeout());
        ExternalDestinations destinations = new ExternalDestinations(store::current,
                up.deniedCidrs().stream().map(ExternalDestinations.Cidr::parse).toList());
        // This host's addresses change (a new interface, a DHCP lease): read again off the loops.
        transport.group().scheduleAtFixedRate(() -> Thread.ofVirtual().name("waypoint-host-addresses").start(() -> {
            try {
                destinations.refreshHostAddresses();
            } catch (RuntimeException e) {
                LOG.warnf("host addresses not refreshed (the last ones stay in force): %s", e.getMessage());
            }
        }), ExternalDestinations.REFRESH_SECONDS, ExternalDestinations.REFRESH_SECONDS, java.util.concurrent.TimeUnit.SECONDS);
        external = new ExternalDialer(transport, up.connectTimeout(), up.dnsTimeout(),
                ExternalDialer.parseServers(up.dnsServers().orElse(java.util.List.of())), destinations,
                up.tlsFilesCheckInterval());
        // HTTP calls name their loop: each rides a pooled connection of that loop (no thread hops per
        // request); TCP tunnels name none and share.
        upstream = new UpstreamClient(pool, identity, up.hbonePort(), up.maxIdlePerEndpoint(), up.idleTimeout(),
                external);
        LoadBalancer balancer = new LoadBalancer(LoadBalancer.Policy.parse(up.loadBalancing()));
        var authn = config.authn();
        // JWKS fetches and ext_authz calls run on a small Vert.x of their own, never on a data-plane loop.
        control = io.vertx.core.Vertx.vertx(new io.vertx.core.VertxOptions().setEventLoopPoolSize(1)
                .setWorkerPoolSize(1).setInternalBlockingPoolSize(1));
        jwks = new JwksCache(control, false, new JwksCache.Settings(
                authn.jwksRefreshInterval(), authn.jwksMinRefetchInterval(), authn.jwksFetchTimeout(),
                authn.maxJwksBytes()), registry);
        RequestAuthenticator authenticator = new RequestAuthenticator(new JwtVerifier(authn.maxTokenBytes(),
                authn.clockSkew().toSeconds()), jwks, authn.verifiedTokenCacheSize(), authn.failedSignaturesPerPeer(),
                authn.failedSignaturesWindow(), () -> System.currentTimeMillis() / 1000, registry);
        var ea = config.extAuthz();
        authorizerBridge = new MeshAuthorizerBridge(transport, pool, identity, up.hbonePort(), store::current,
                new MeshAuthorizerBridge.Limits(ea.maxTunnels(), up.connectTimeout(), ea.tunnelIdleTimeout()), registry);
        extAuthz = new ExtAuthz(new ExtAuthz.Limits(ea.maxInFlight(), ea.maxResponseBytes()), control, registry,
                authorizerBridge.address());
        dataPath = new DataPath(store, new L7Authorizer(config.gateway()), extAuthz,
                new HeldBodies(ea.maxBufferedBodyBytes(), ea.bodyReadTimeout(), registry), balancer, upstream,
                new RequestMetrics(registry), new RetryBudget(http.minRetryConcurrency()),
                http.retryBudgetPercent(), config.trustDomain(), id, limits, authenticator,
                new Mirrors(http.maxMirrorsInFlight(), http.mirrorTimeout(), registry));
        dispatcher = new InboundDispatcher(dataPath, pool, identity, up.hbonePort(), external,
                new HboneRefusals(registry));
        HboneAdmission admission = HboneAdmission.forThisProcess(config.listen().limits().toAdmissionLimits());
        listener = new HboneListener(transport, new InetSocketAddress(config.listen().address(),
                config.listen().hbonePort()), identity, settings, admission, dispatcher);

        Gauge.builder("waypoint_active_requests", dataPath.retryBudget, RetryBudget::activeRequests)
                .description("HTTP requests in flight").register(registry);
        Gauge.builder("waypoint_mirrors_in_flight", dataPath.mirrors, Mirrors::inFlight)
                .description("RequestMirror copies under way (bounded by waypoint.http.max-mirrors-in-flight)")
                .register(registry);
        Gauge.builder("waypoint_buffered_body_bytes", limits.bodyBudget(), BodyBudget::held)
                .description("Request body bytes held for retries now (bounded by waypoint.http.max-buffered-body-bytes)")
                .register(registry);
        Gauge.builder("waypoint_open_tunnels", dispatcher, InboundDispatcher::openTunnels)
                .description("Inbound HBONE tunnels open").register(registry);
        Gauge.builder("waypoint_hbone_connections", admission, HboneAdmission::connections)
                .description("Inbound HBONE connections held, in their handshake or established (bounded by"
                        + " waypoint.listen.limits.max-connections)").register(registry);
        Gauge.builder("waypoint_pool_connections", this, n -> n.pool.totalConnections())
                .description("Pooled outbound HBONE connections").register(registry);

        if (config.xdsAddress().isPresent()) {
            Node node = Node.newBuilder().setId("waypoint~" + config.gateway() + "~" + config.podName())
                    .setRole(Node.Role.WAYPOINT).setGateway(config.gateway())
                    .setNodeName(config.nodeName().orElse(""))
                    .putAllMetadata(config.podIp().map(ip -> java.util.Map.of("pod-ip", ip)).orElse(java.util.Map.of()))
                    .build();
            xds = new DeltaDiscoveryClient(ControlPlaneEndpoint.of(config.xdsAddress().get(), config.xdsServerName(),
                    meshRoot, idc.tokenFile()), node, TYPES, s -> replaceState(WaypointState.of(
                    s.of(ResourceTypes.WORKLOAD, Workload.class), s.of(ResourceTypes.SERVICE, Service.class),
                    s.of(ResourceTypes.SERVICE_ROUTES, ServiceRoutes.class),
                    s.of(ResourceTypes.L7_AUTHORIZATION, L7Authorization.class),
                    s.of(ResourceTypes.L7_AUTHENTICATION, L7Authentication.class))), "waypoint-xds");
            xds.start();
        }
        started = true;
        LOG.infof("waypoint %s started as %s: %d data-plane threads (%s), HBONE on %s, identity from %s, config from %s",
                config.gateway(), id, threads, transport.isNative() ? "epoll" : "nio", listener.localAddress(),
                identity.describe(), config.xdsAddress().map(a -> "xds at " + a).orElse("the embedding code"));
        return this;
    }

    /** A new configuration; the key sets no rule names any more are forgotten. */
    public void replaceState(WaypointState next) {
        store.replace(next);
        java.util.Set<String> uris = new java.util.HashSet<>();
        java.util.Set<String> inline = new java.util.HashSet<>();
        for (L7Authentication a : next.authentications()) {
            for (JwtRule r : a.getJwtRulesList()) {
                (r.getJwks().isEmpty() ? uris : inline).add(r.getJwks().isEmpty() ? r.getJwksUri() : r.getJwks());
            }
        }
        jwks.retain(uris, inline);
    }

    /** Why the waypoint is not ready, or empty when it is: a certificate, a first configuration, not draining. */
    public Optional<String> notReady() {
        if (!started) {
            return Optional.of("not started");
        }
        if (draining) {
            return Optional.of("draining");
        }
        if (!identity.valid()) {
            return Optional.of("no valid certificate yet" + (identity.lastError() == null ? ""
                    : ": " + identity.lastError()));
        }
        if (!store.configured()) {
            return Optional.of(xds == null ? "no configuration (waypoint.xds-address is not set)"
                    : "waiting for configuration from " + xds.target()
                            + (xds.lastError() == null ? "" : ": " + xds.lastError()));
        }
        return Optional.empty();
    }

    /**
     * Graceful shutdown: readiness goes down and every connected client gets GOAWAY (their pools
     * open new connections elsewhere); HTTP/1.1 responses close their connections from now on. New
     * connections are still accepted for {@code minimum}, for clients that chose this waypoint
     * before its endpoint was removed. Returns once no request or TCP tunnel is in flight and no
     * tunnel was accepted for that time, or when {@code timeout} has passed; the caller then closes
     * the node.
     */
    public boolean drain(Duration minimum, Duration timeout) {
        if (!started) {
            return true;
        }
        draining = true;
        dataPath.drain();
        listener.goAway();
        dispatcher.goAway();
        long start = System.nanoTime();
        long deadline = start + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            boolean idle = dataPath.retryBudget.activeRequests() == 0 && dispatcher.tcpTunnels() == 0;
            // A tunnel accepted lately may not have sent its request yet: give it the minimum time too.
            long quietSince = Math.max(start, dispatcher.lastAcceptNanos());
            if (idle && System.nanoTime() - quietSince >= minimum.toNanos()) {
                LOG.infof("drained after %d ms: no request or TCP tunnel left", (System.nanoTime() - start) / 1_000_000);
                return true;
            }
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        LOG.warnf("drain timeout %s passed with %d requests and %d TCP tunnels still open", timeout,
                dataPath.retryBudget.activeRequests(), dispatcher.tcpTunnels());
        return false;
    }

    @Override
    public void close() {
        if (xds != null) {
            xds.close();
        }
        if (listener != null) {
            listener.close();
        }
        if (upstream != null) {
            upstream.close();
        }
        if (pool != null) {
            pool.close();
        }
        if (external != null) {
            external.close();
        }
        if (jwks != null) {
            jwks.close();
        }
        if (identity != null) {
            identity.close();
        }
        if (extAuthz != null) {
            extAuthz.close();
        }
        if (authorizerBridge != null) {
            authorizerBridge.close();
        }
        if (control != null) {
            control.close();
        }
        if (transport != null) {
            transport.close();
        }
    }

    public StateStore store() {
        return store;
    }

    public WaypointIdentity identity() {
        return identity;
    }

    public InetSocketAddress hboneAddress() {
        return listener.localAddress();
    }

    public InboundDispatcher dispatcher() {
        return dispatcher;
    }

    public LoadBalancer balancer() {
        return dataPath.balancer;
    }

    public int activeRequests() {
        return dataPath.retryBudget.activeRequests();
    }

    public Optional<DeltaDiscoveryClient> xds() {
        return Optional.ofNullable(xds);
    }

    /** The loopback listener that carries checks to mesh authorizers through HBONE. */
    public MeshAuthorizerBridge authorizerBridge() {
        return authorizerBridge;
    }

    public MeterRegistry registry() {
        return registry;
    }
}
