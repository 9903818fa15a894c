package dev.ambient.ztunnel;

import dev.ambient.controlplane.ControlPlaneEndpoint;
import dev.ambient.controlplane.MeshRootFile;
import dev.ambient.hbone.HboneAdmission;
import dev.ambient.hbone.HboneConnector;
import dev.ambient.hbone.HboneSettings;
import dev.ambient.net.Transport;
import dev.ambient.zds.AllowedPeers;
import dev.ambient.ztunnel.config.ZtunnelConfig;
import dev.ambient.ztunnel.dns.DnsCache;
import dev.ambient.ztunnel.dns.DnsListener;
import dev.ambient.ztunnel.dns.DnsMetrics;
import dev.ambient.ztunnel.dns.DnsProxy;
import dev.ambient.ztunnel.dns.DnsUpstream;
import dev.ambient.ztunnel.dns.HostResolver;
import dev.ambient.ztunnel.dns.UpstreamServers;
import dev.ambient.ztunnel.identity.CertificateSource;
import dev.ambient.ztunnel.identity.LocalCertificateSource;
import dev.ambient.ztunnel.identity.RemoteCertificateSource;
import dev.ambient.ztunnel.identity.WorkloadCertificates;
import dev.ambient.ztunnel.inbound.InboundHandler;
import dev.ambient.ztunnel.inbound.InboundListeners;
import dev.ambient.ztunnel.inbound.InboundPlaintextListener;
import dev.ambient.ztunnel.inbound.WorkloadDialer;
import dev.ambient.ztunnel.guard.OwnListeners;
import dev.ambient.ztunnel.inpod.InpodWorkloads;
import dev.ambient.ztunnel.inpod.SocketThreads;
import dev.ambient.ztunnel.inpod.ZdsClient;
import dev.ambient.ztunnel.outbound.OutboundCaptureListener;
import dev.ambient.ztunnel.metrics.TrafficMetrics;
import dev.ambient.ztunnel.outbound.OutboundProxy;
import dev.ambient.ztunnel.outbound.OutboundRouter;
import dev.ambient.ztunnel.outbound.Socks5Listener;
import dev.ambient.hbone.ConnectionPool;
import dev.ambient.ztunnel.state.AuthorizationEvaluator;
import dev.ambient.ztunnel.state.LocalConfigException;
import dev.ambient.ztunnel.state.LocalConfigFile;
import dev.ambient.ztunnel.state.LocalConfigParser;
import dev.ambient.ztunnel.state.WorkloadStore;
import dev.ambient.ztunnel.xds.XdsClient;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;
import org.jboss.logging.Logger;

/**
 * One ztunnel assembled from its parts: state (standalone file), identity, the data-plane event
 * loops, inbound listeners, the outbound proxy with its connection pool, and SOCKS5. Plain Java,
 * so tests run several nodes in one JVM; {@link Ztunnel} runs one inside Quarkus.
 */
public final class ZtunnelNode implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(ZtunnelNode.class);

    private final ZtunnelConfig config;
    private final MeterRegistry registry;
    private final List<OwnListeners.Listener> alsoListening;
    private final WorkloadStore store = new WorkloadStore();
    private Transport transport;
    private WorkloadCertificates certificates;
    private ConnectionPool pool;
    private InboundListeners inbound;
    private Socks5Listener socks;
    private OutboundCaptureListener capture;
    private InboundPlaintextListener plaintext;
    private DnsProxy dnsProxy;
    private HostResolver resolver;
    private DnsListener dns;
    private LocalConfigFile localConfig;
    private XdsClient xds;
    private MeshRootFile meshRoot;
    private volatile InpodWorkloads inpod;
    private ZdsClient zds;
    private volatile boolean started;

    public ZtunnelNode(ZtunnelConfig config, MeterRegistry registry) {
        this(config, registry, List.of());
    }

    /**
     * @param alsoListening listeners of this process that the node does not open itself (the
     *        Quarkus shell's metrics and probe ports), which no client may make it dial either
     */
    public ZtunnelNode(ZtunnelConfig config, MeterRegistry registry, List<OwnListeners.Listener> alsoListening) {
        this.config = config;
        this.registry = registry;
        this.alsoListening = List.copyOf(alsoListening);
    }

    public ZtunnelNode start() throws LocalConfigException {
        if (config.xdsAddress().isPresent() || "ca".equals(config.identity().source())) {
            meshRoot(); // before anything starts: no control plane without the root to verify it by
        }
        var dp = config.dataplane();
        int threads = dp.threads().orElse(Runtime.getRuntime().availableProcessors());
        transport = Transport.create("ztunnel-dataplane", threads);
        HboneSettings settings = new HboneSettings(dp.streamWindow(), dp.connectionWindow(), dp.maxFrameSize(),
                dp.maxStreamsPerConnection(), dp.limits().toLimits());
        // One count of HBONE connections for every listener of the node (in-pod: one per pod).
        HboneAdmission admission = HboneAdmission.forThisProcess(dp.limits().toAdmissionLimits());
        certificates = new WorkloadCertificates(certificateSource());
        TrafficMetrics metrics = new TrafficMetrics(registry);
        AuthorizationEvaluator authorization = new AuthorizationEvaluator();
        int connectTimeout = (int) config.pool().connectTimeout().toMillis();

        pool = new ConnectionPool(new HboneConnector(transport, settings, connectTimeout, dp.socketMark()), transport.group(),
                config.pool().idleTimeout());
        WorkloadDialer dialer = new WorkloadDialer(transport, dp.preserveSourceIp(), connectTimeout, dp.socketMark());
        OwnListeners own = ownListeners();
        InboundHandler.Shared inboundShared = new InboundHandler.Shared(store, authorization, metrics, own,
                config.trustDomain());
        inbound = new InboundListeners(transport, config.nodeName(), config.ports().hbone(), config.trustDomain(),
                certificates, settings, admission,
                (uid, identity) -> new InboundHandler(uid, identity, inboundShared, dialer));
        if (config.inpod().enabled()) {
            // Before any state arrives: in-pod mode binds no per-workload listener in our own namespace.
            inbound.servedInPod(w -> true, () -> inpod == null ? java.util.Set.of() : inpod.identities());
        }
        store.addListener(inbound::reconcile);

        OutboundRouter router = new OutboundRouter(config.trustDomain(), config.ports().hbone(), own,
                OutboundRouter.TrafficPolicy.of(config.outboundTrafficPolicy()));
        startDns();
        OutboundProxy outbound = new OutboundProxy(store, router, certificates, pool, metrics, transport,
                config.trustDomain(), connectTimeout, dp.socketMark(), dp.preserveSourceIp()).resolvingWith(resolver);
        var ports = config.ports();
        // In-pod mode captures inside each pod's namespace; nothing is redirected into our own.
        boolean inpodMode = config.inpod().enabled();
        if (!inpodMode && ports.outboundCapture() > 0 && dnsProxy != null) {
            // Shared mode: DNS is captured beside the outbound connections; the client is found by address.
            dns = new DnsListener(transport, dnsProxy, sharedDnsClients(), ch -> { });
            dns.bind(new InetSocketAddress(ports.captureAddress(), ports.dns()));
        }
        if (!inpodMode && ports.outboundCapture() > 0) {
            capture = new OutboundCaptureListener(transport, store, outbound, config.nodeName());
            capture.bind(new InetSocketAddress(ports.captureAddress(), ports.outboundCapture()));
        }
        if (!inpodMode && ports.inboundPlaintext() > 0) {
            plaintext = new InboundPlaintextListener(transport, store, authorization, metrics, dialer,
                    config.nodeName(), config.trustDomain(), own);
            plaintext.bind(new InetSocketAddress(ports.captureAddress(), ports.inboundPlaintext()));
        }
        if (config.ports().socks5() > 0) {
            socks = new Socks5Listener(transport, store, outbound, config.nodeName());
            socks.bind(new InetSocketAddress(config.nodeIp(), config.ports().socks5()));
        }

        Gauge.builder("ztunnel_pool_connections", pool, ConnectionPool::totalConnections)
                .description("Pooled outbound HBONE connections").register(registry);
        Gauge.builder("ztunnel_hbone_connections", admission, HboneAdmission::connections)
                .description("Inbound HBONE connections held, in their handshake or established (bounded by"
                        + " ztunnel.dataplane.limits.max-connections)").register(registry);
        Gauge.builder("ztunnel_workloads", store, s -> s.current().workloads().size())
                .description("Workloads known to this ztunnel").register(registry);

        if (config.xdsAddress().isPresent()) {
            xds = new XdsClient(ControlPlaneEndpoint.of(config.xdsAddress().get(), config.xdsServerName(), meshRoot(),
                    config.identity().tokenFile()), config.nodeName(), store);
            xds.start();
        } else if (config.localConfig().isPresent()) {
            localConfig = new LocalConfigFile(config.localConfig().get(), new LocalConfigParser(), store);
            localConfig.start();
        }
        if (inpodMode) {
            startInpod(settings, admission, inboundShared, router, connectTimeout);
        }
        inbound.reconcile(store.current());
        started = true;
        LOG.infof("ztunnel for node %s started: %d data-plane threads (%s), identity from %s, config from %s",
                config.nodeName(), threads, transport.isNative() ? "epoll" : "nio", certificates.source().describe(),
                config.xdsAddress().map(a -> "xds at " + a)
                        .orElse(config.localConfig().map(Object::toString).orElse("nothing yet")));
        return this;
    }

    /** The DNS proxy and the resolver of ServiceEntry hosts, when {@code ztunnel.dns.enabled} and a DNS port is set. */
    private void startDns() {
        var d = config.dns();
        if (!d.enabled() || config.ports().dns() <= 0) {
            return;
        }
        DnsCache cache = new DnsCache(d.cacheMaxEntries(), d.cacheMaxTtl(), d.cacheMaxNegativeTtl());
        DnsUpstream upstream = new DnsUpstream(transport, UpstreamServers.of(d.upstream(), d.resolvConf()),
                d.upstreamTimeout(), config.dataplane().socketMark());
        dnsProxy = new DnsProxy(store, d.clusterDomain(), cache, upstream, new DnsMetrics(registry, cache),
                new DnsProxy.Limits(d.queriesPerSecond(), d.queryBurst(), d.maxOutstanding(), d.maxOutstandingPerPod(),
                        d.maxTcpConnections(), d.tcpIdleTimeout(), (int) d.localTtl().toSeconds()));
        resolver = new HostResolver(upstream, cache);
        LOG.infof("dns: proxy on port %d, upstream %s", config.ports().dns(), upstream.servers());
    }

    /** Shared mode: one client per source address (at most 4096 remembered; the rest share one budget). */
    private java.util.function.Function<InetAddress, DnsProxy.Client> sharedDnsClients() {
        java.util.Map<InetAddress, DnsProxy.Client> clients = new java.util.concurrent.ConcurrentHashMap<>();
        DnsProxy.Client overflow = dnsProxy.client("DNS clients beyond 4096 addresses", Optional::empty,
                dev.ambient.ztunnel.inpod.SocketNamespace.HOST);
        return ip -> {
            DnsProxy.Client c = clients.get(ip);
            if (c != null) {
                return c;
            }
            if (clients.size() >= 4096) {
                return overflow;
            }
            return clients.computeIfAbsent(ip, a -> dnsProxy.client("client " + a.getHostAddress(),
                    () -> store.current().workloadOnNode(a, config.nodeName()),
                    dev.ambient.ztunnel.inpod.SocketNamespace.HOST));
        };
    }

    /** In-pod mode: pods arrive over ZDS from the node agent; none is served from our own namespace. */
    private void startInpod(HboneSettings settings, HboneAdmission admission, InboundHandler.Shared inboundShared,
            OutboundRouter router, int connectTimeout) {
        var dp = config.dataplane();
        var ip = config.inpod();
        inpod = new InpodWorkloads(new InpodWorkloads.Dataplane(transport, settings, admission,
                new HboneConnector(transport, settings, connectTimeout, dp.socketMark()), inboundShared,
                certificates, router, config.nodeName(), connectTimeout, dp.socketMark(),
                config.pool().idleTimeout(), config.ports().hbone(), config.ports().outboundCapture(),
                config.ports().inboundPlaintext(), dnsProxy, resolver, config.ports().dns(), dp.preserveSourceIp()),
                ip.drainTimeout(),
                new SocketThreads(ip.socketThreads(), ip.socketQueue(), registry), registry);
        inpod.onChange(() -> inbound.reconcile(store.current()));
        if (certificates.source() instanceof RemoteCertificateSource ca) {
            // The CA checks a pod of the identity is on this node; an Add comes before xds lists it.
            ca.alsoServing(inpod::podWithIdentity);
        }
        Gauge.builder("ztunnel_inpod_workloads", inpod, InpodWorkloads::running)
                .description("Pods enrolled over ZDS and served from inside their network namespaces")
                .register(registry);
        zds = new ZdsClient(ip.zdsSocket(), AllowedPeers.of(ip.zdsAllowedUids()), inpod, ip.reconnectInitialBackoff(),
                ip.reconnectMaxBackoff(), registry);
        Gauge.builder("ztunnel_zds_connected", zds, z -> z.connected() ? 1 : 0)
                .description("1 while connected to the node agent's ZDS socket").register(registry);
        zds.start();
    }

    /**
     * Every listener of this process, for the self-target check: the data-plane ports at every local
     * workload address (in-pod: inside every pod), and what listens in our own namespace.
     */
    private OwnListeners ownListeners() {
        var ports = config.ports();
        List<OwnListeners.Listener> all = new ArrayList<>();
        OwnListeners.Where atWorkloads = new OwnListeners.Where.AtLocalWorkloads();
        all.add(new OwnListeners.Listener("HBONE", ports.hbone(), atWorkloads));
        InetAddress capture = literal(ports.captureAddress(), "ztunnel.ports.capture-address");
        if (ports.outboundCapture() > 0) {
            all.add(new OwnListeners.Listener("outbound capture", ports.outboundCapture(), atWorkloads));
            all.add(new OwnListeners.Listener("outbound capture", ports.outboundCapture(),
                    new OwnListeners.Where.At(capture)));
        }
        if (ports.inboundPlaintext() > 0) {
            all.add(new OwnListeners.Listener("inbound plaintext", ports.inboundPlaintext(), atWorkloads));
            all.add(new OwnListeners.Listener("inbound plaintext", ports.inboundPlaintext(),
                    new OwnListeners.Where.At(capture)));
        }
        if (ports.dns() > 0 && config.dns().enabled()) {
            // In-pod on 127.0.0.1 and ::1 in every pod (loopback counts at the workloads); shared mode beside 15001.
            all.add(new OwnListeners.Listener("DNS", ports.dns(), atWorkloads));
            all.add(new OwnListeners.Listener("DNS", ports.dns(), new OwnListeners.Where.At(capture)));
        }
        InetAddress nodeIp = literal(config.nodeIp(), "ztunnel.node-ip");
        if (ports.socks5() > 0) {
            all.add(new OwnListeners.Listener("SOCKS5", ports.socks5(), new OwnListeners.Where.At(nodeIp)));
        }
        if (ports.admin() > 0) {
            all.add(new OwnListeners.Listener("admin", ports.admin(),
                    new OwnListeners.Where.At(InetAddress.getLoopbackAddress())));
        }
        all.addAll(alsoListening);
        Set<InetAddress> addresses = new HashSet<>(interfaceAddresses());
        addresses.add(nodeIp);
        if (!capture.isAnyLocalAddress()) {
            addresses.add(capture);
        }
        return new OwnListeners(all, addresses);
    }

    /** This namespace's interface addresses now, where wildcard listeners accept. */
    private static Set<InetAddress> interfaceAddresses() {
        try {
            return NetworkInterface.networkInterfaces().flatMap(NetworkInterface::inetAddresses)
                    .collect(Collectors.toSet());
        } catch (SocketException e) {
            LOG.warnf("cannot list this host's addresses (%s); the self-target check knows the node IP and"
                    + " loopback only", e.getMessage());
            return Set.of();
        }
    }

    private static InetAddress literal(String ip, String key) {
        try {
            return InetAddress.ofLiteral(ip);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(key + "=" + ip + " is not an IP address", e);
        }
    }

    private CertificateSource certificateSource() {
        var id = config.identity();
        return switch (id.source()) {
            case "local" -> new LocalCertificateSource(id.caDir(), config.trustDomain(), id.certificateLifetime());
            case "ca" -> new RemoteCertificateSource(ControlPlaneEndpoint.of(id.caAddress(), id.caServerName(),
                    meshRoot(), id.tokenFile()), id.certificateLifetime(), store, config.nodeName(), config.trustDomain());
            default -> throw new IllegalArgumentException("ztunnel.identity.source=" + id.source()
                    + " is unknown; use 'local' or 'ca'");
        };
    }

    /** The mounted mesh root, read once for both control-plane channels; missing = a start-up error. */
    private MeshRootFile meshRoot() {
        if (meshRoot == null) {
            meshRoot = MeshRootFile.load(config.identity().rootCertFile());
        }
        return meshRoot;
    }

    @Override
    public void close() {
        if (zds != null) {
            zds.close();
        }
        if (inpod != null) {
            inpod.close();
        }
        if (localConfig != null) {
            localConfig.close();
        }
        if (xds != null) {
            xds.close();
        }
        for (AutoCloseable listener : new AutoCloseable[] {socks, capture, plaintext, dns}) {
            if (listener != null) {
                try {
                    listener.close();
                } catch (Exception e) {
                    LOG.debugf("closing %s: %s", listener, e.getMessage());
                }
            }
        }
        if (inbound != null) {
            inbound.close();
        }
        if (pool != null) {
            pool.close();
        }
        if (certificates != null) {
            certificates.close();
        }
        if (transport != null) {
            transport.close();
        }
    }

    public boolean started() {
        return started;
    }

    public WorkloadStore store() {
        return store;
    }

    public WorkloadCertificates certificates() {
        return certificates;
    }

    public InboundListeners inbound() {
        return inbound;
    }

    public ConnectionPool pool() {
        return pool;
    }

    public Optional<LocalConfigFile> localConfig() {
        return Optional.ofNullable(localConfig);
    }

    public Optional<XdsClient> xds() {
        return Optional.ofNullable(xds);
    }

    /** In-pod mode's enrolled pods; empty in shared mode. */
    public Optional<InpodWorkloads> inpod() {
        return Optional.ofNullable(inpod);
    }

    public Optional<ZdsClient> zds() {
        return Optional.ofNullable(zds);
    }

    /** The DNS proxy, when enabled. */
    public Optional<DnsProxy> dnsProxy() {
        return Optional.ofNullable(dnsProxy);
    }

    public Optional<Socks5Listener> socks() {
        return Optional.ofNullable(socks);
    }

    public MeterRegistry registry() {
        return registry;
    }

    public ZtunnelConfig config() {
        return config;
    }
}
