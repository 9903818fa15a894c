package dev.ambient.ztunnel.inpod;

import dev.ambient.hbone.ConnectionPool;
import dev.ambient.hbone.HboneConnector;
import dev.ambient.hbone.HboneAdmission;
import dev.ambient.hbone.HboneServerInitializer;
import dev.ambient.hbone.HboneSettings;
import dev.ambient.identity.SpiffeId;
import dev.ambient.net.NetworkNamespace;
import dev.ambient.net.Transport;
import dev.ambient.proto.zds.WorkloadInfo;
import dev.ambient.zds.FileDescriptors;
import dev.ambient.ztunnel.dns.DnsListener;
import dev.ambient.ztunnel.dns.DnsProxy;
import dev.ambient.ztunnel.dns.HostResolver;
import dev.ambient.ztunnel.identity.RemoteCertificateSource;
import dev.ambient.ztunnel.identity.WorkloadCertificates;
import dev.ambient.ztunnel.identity.WorkloadIdentity;
import dev.ambient.ztunnel.inbound.InboundHandler;
import dev.ambient.ztunnel.inbound.InboundPlaintextListener;
import dev.ambient.ztunnel.inbound.SourceFallbacks;
import dev.ambient.ztunnel.inbound.WorkloadDialer;
import dev.ambient.ztunnel.outbound.OutboundCaptureListener;
import dev.ambient.ztunnel.outbound.OutboundProxy;
import dev.ambient.ztunnel.outbound.OutboundRouter;
import dev.ambient.ztunnel.state.WorkloadStore;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.handler.codec.http2.Http2FrameCodec;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * The pods this ztunnel serves from inside their network namespaces. The ZDS client calls
 * {@link #add}, {@link #keep}, {@link #del} and {@link #retainOnly} from its own thread, one
 * request at a time; each answers with an error string for the ack ("" on success). One pod's
 * failure never touches another pod.
 */
public final class InpodWorkloads implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(InpodWorkloads.class);
    /**
     * Wildcard: inside a pod's namespace only the pod's own addresses exist (see README). {@code ::}
     * is one dual-stack socket per port (Netty creates it with IPV6_V6ONLY off) that takes both
     * families; a kernel without IPv6 gets IPv4 sockets, and the IPv4 wildcard.
     */
    private static final String ANY = io.netty.channel.unix.Socket.isIPv6Preferred() ? "::" : "0.0.0.0";
    private static final String LOOPBACK = "127.0.0.1";
    private static final String LOOPBACK_V6 = "::1";
    /** How long an Add waits for the pod's certificate before it is acked anyway. */
    private static final Duration CERTIFICATE_WAIT = Duration.ofSeconds(5);

    /** What a pod's proxies are built from: the node's shared parts. */
    public record Dataplane(Transport transport, HboneSettings settings, HboneAdmission admission,
            HboneConnector connector, InboundHandler.Shared inbound, WorkloadCertificates certificates, OutboundRouter router, String nodeName,
            int connectTimeoutMillis, int socketMark, Duration poolIdleTimeout, int hbonePort, int outboundPort,
            int inboundPlaintextPort, DnsProxy dns, HostResolver resolver, int dnsPort, boolean preserveSourceIp) {
        WorkloadStore store() {
            return inbound.store();
        }

        String trustDomain() {
            return inbound.trustDomain();
        }
    }

    /** Why a pod stops being served here: the agent's Del, or a newer ztunnel taking every pod over. */
    enum Retirement {
        DEL("del"),
        HANDOVER("handover");

        final String tag;

        Retirement(String tag) {
            this.tag = tag;
        }
    }

    private final Dataplane dp;
    private final Duration drainTimeout;
    private final MeterRegistry registry;
    /** Set once a newer instance took the pods over: nothing is enrolled here any more. */
    private volatile boolean replaced;
    private final Map<String, InpodWorkload> pods = new ConcurrentHashMap<>();
    private final Set<InpodWorkload> draining = ConcurrentHashMap.newKeySet();
    private final SocketThreads socketThreads;
    private final ScheduledExecutorService drains;
    private final SourceFallbacks sourceFallbacks;
    private volatile Runnable changed = () -> { };

    public InpodWorkloads(Dataplane dp, Duration drainTimeout, SocketThreads socketThreads, MeterRegistry registry) {
        this.dp = dp;
        this.drainTimeout = drainTimeout;
        this.registry = registry;
        this.socketThreads = socketThreads;
        this.sourceFallbacks = new SourceFallbacks(dp.inbound().metrics());
        this.drains = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "ztunnel-inpod-drain");
            t.setDaemon(true);
            return t;
        });
    }

    /** Called after every enrolment change (so shared-mode listeners and certificates follow). */
    public void onChange(Runnable changed) {
        this.changed = changed;
    }

    /**
     * Enrols a pod: takes ownership of {@code netnsFd} (closed here on any failure), opens the
     * pod's listeners inside its namespace. Called on the ZDS thread, which enters the namespace.
     *
     * @param replyRouting the agent installs reply routing in the pod (the Add's {@code reply_routing}):
     *     only then does the application see the client's address, else the pod's own
     */
    public String add(String uid, WorkloadInfo info, int netnsFd, boolean replyRouting) {
        if (uid.isEmpty()) {
            FileDescriptors.close(netnsFd);
            return "Add without a uid";
        }
        if (replaced) {
            FileDescriptors.close(netnsFd);
            return "this ztunnel was replaced by a newer one";
        }
        NetworkNamespace netns;
        try {
            netns = NetworkNamespace.adopt(netnsFd);
        } catch (IOException e) {
            FileDescriptors.close(netnsFd);
            String why = "pod " + info.getNamespace() + "/" + info.getName() + ": bad network namespace: "
                    + e.getMessage();
            LOG.warnf("inpod: refused Add of %s: %s", uid, why);
            return why;
        }
        InpodWorkload existing = pods.get(uid);
        if (existing != null) {
            if (existing.sockets().netns().inode() == netns.inode()) {
                // A replay after a reconnect: we already serve this namespace; the duplicate fd goes.
                // Its reply routing is as this Add says (an agent upgraded or downgraded meanwhile).
                netns.close();
                LOG.infof("inpod: %s already enrolled; Add is a no-op", existing.describe());
                sourceMode(existing, replyRouting);
                return "";
            }
            // Same pod, new sandbox (its namespace was re-created): the old one is finished.
            LOG.infof("inpod: %s arrives with a new network namespace %s (was %s); replacing it",
                    existing.describe(), netns.describe(), existing.netns());
            del(uid);
        }
        InpodWorkload pod = null;
        try {
            List<InetAddress> addresses = netns.call(InpodWorkloads::podAddresses);
            boolean ipv6Loopback = netns.call(InpodWorkloads::hasIpv6Loopback);
            PodNamespace sockets = new PodNamespace(netns, "pod " + info.getNamespace() + "/" + info.getName(),
                    socketThreads);
            pod = new InpodWorkload(uid, info, dp.nodeName(), sockets, addresses);
            sourceMode(pod, replyRouting);
            pod.identity(WorkloadIdentity.of(pod.resolve(dp.store().current()), dp.trustDomain()));
            pods.put(uid, pod);
            // The certificate before the listeners: in a hand-over they join the old instance's
            // (SO_REUSEPORT) and the kernel gives them connections at once, which a listener without
            // its certificate could only refuse.
            awaitCertificate(pod);
            start(pod, ipv6Loopback);
            pod.state(InpodWorkload.State.RUNNING);
            LOG.infof("inpod: enrolled %s in %s, addresses %s, identity %s, listening on %s", pod.describe(),
                    netns.describe(), addresses, pod.identity(), pod.listeners().stream()
                            .map(l -> l.purpose() + " " + l.address().getPort()).toList());
            changed.run();
            return "";
        } catch (Exception e) {
            String why = "pod " + info.getNamespace() + "/" + info.getName() + ": " + rootMessage(e);
            LOG.warnf("inpod: refused Add of %s: %s", uid, why);
            if (pod != null) {
                pods.remove(uid, pod);
                release(pod);
            } else {
                netns.close();
            }
            return why;
        }
    }

    /**
     * Sets whether the pod's application sees the client's address, and says so once per pod (and
     * on a change) when the agent installs no reply routing: a transparent connection's replies
     * would leave through the pod's interface and time out, so it gets the pod's own address.
     */
    private void sourceMode(InpodWorkload pod, boolean replyRouting) {
        boolean fresh = pod.state() == InpodWorkload.State.STARTING;
        boolean changed = !fresh && pod.replyRouting() != replyRouting;
        pod.replyRouting(replyRouting);
        if (!dp.preserveSourceIp()) {
            return; // the pod's own address either way
        }
        if (!replyRouting && (fresh || changed)) {
            LOG.infof("inpod: %s: the node agent does not say it installs reply routing there (an agent older than"
                    + " this ztunnel): its application sees connections from the pod's own address", pod.describe());
        } else if (changed) {
            LOG.infof("inpod: %s: the node agent installs reply routing there now: its application sees the client's"
                    + " address", pod.describe());
        }
    }

    /**
     * Acked only with a certificate in hand (bounded): the agent lets the pod start on our ack, and
     * a pod served without its certificate would have its first connections refused. Asked once
     * the pod is listed: until then a state change (another pod's drain ending, say) may prune the
     * certificates of identities no pod holds, this one's included.
     */
    private void awaitCertificate(InpodWorkload pod) throws InterruptedException {
        SpiffeId id = pod.identity();
        try {
            dp.certificates().forIdentity(id).get(CERTIFICATE_WAIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            LOG.warnf("inpod: no certificate for %s after %s; enrolling %s anyway, its connections fail until it"
                    + " arrives", id, CERTIFICATE_WAIT, pod.describe());
        } catch (java.util.concurrent.ExecutionException e) {
            LOG.warnf("inpod: certificate for %s failed (%s); enrolling %s anyway, retried in the background", id,
                    rootMessage(e), pod.describe());
        }
    }

    private void start(InpodWorkload pod, boolean ipv6Loopback) throws Exception {
        InpodWorkload p = pod;
        SpiffeId id = pod.identity();
        PodNamespace sockets = pod.sockets();
        // Listeners share their ports with a newer ztunnel's during a hand-over (see README, Hand-over).
        Transport listening = dp.transport().reusingPorts();
        ConnectionPool pool = new ConnectionPool(dp.connector(), dp.transport().group(), dp.poolIdleTimeout());
        pod.pool(pool);
        // The pod's sockets leave with its own address: nothing to bind.
        OutboundProxy outbound = new OutboundProxy(dp.store(), dp.router(), dp.certificates(), pool,
                dp.inbound().metrics(), dp.transport(), dp.trustDomain(), dp.connectTimeoutMillis(), dp.socketMark(),
                false, sockets).resolvingWith(dp.resolver());
        // The application sees the client's address: a transparent socket in the pod, answered through
        // the node agent's reply routing.
        WorkloadDialer dialer = WorkloadDialer.inPod(dp.transport(), dp.preserveSourceIp(), p::replyRouting,
                dp.connectTimeoutMillis(), dp.socketMark(), sockets, sourceFallbacks);
        InboundHandler handler = new InboundHandler(pod.uid(), s -> java.util.Optional.of(p.resolve(s)), id,
                dp.inbound(), dialer);
        HboneServerInitializer tls = new HboneServerInitializer(
                () -> dp.certificates().current(id).map(WorkloadCertificates.TlsMaterial::server).orElse(null),
                dp.settings(), dp.admission(), handler);
        ChannelInitializer<Channel> hbone = new ChannelInitializer<>() {
            @Override
            protected void initChannel(Channel ch) {
                p.hboneConnections.add(ch);
                ch.pipeline().addLast(tls);
            }
        };
        OutboundCaptureListener capture = new OutboundCaptureListener(listening, outbound,
                ip -> java.util.Optional.of(p.resolve(dp.store().current())), "pod " + pod.describe(), sockets::track);
        InboundPlaintextListener plaintext = new InboundPlaintextListener(listening, dp.store(),
                dp.inbound().authorization(), dp.inbound().metrics(), dialer, dp.nodeName(), dp.trustDomain(),
                dp.inbound().ownListeners(), (state, ip) -> p.ifAddressOf(state, ip), sockets::track);
        // The listening sockets must be born in the pod's namespace: this (ZDS) thread enters it.
        sockets.netns().call(() -> {
            bind(pod, "hbone", dp.hbonePort(), a -> listening.listen(a, tls.acceptGate(), hbone));
            if (dp.outboundPort() > 0) {
                bind(pod, "outbound", dp.outboundPort(), a -> {
                    capture.bind(a);
                    return capture.channel();
                });
            }
            if (dp.inboundPlaintextPort() > 0) {
                bind(pod, "inbound-plaintext", dp.inboundPlaintextPort(), a -> {
                    plaintext.bind(a);
                    return plaintext.channel();
                });
            }
            if (dp.dns() != null && dp.dnsPort() > 0) {
                // On loopback: REDIRECT in OUTPUT sends there, and our answers leave from it, as conntrack expects.
                // ip6tables REDIRECTs IPv6 queries to ::1: a listener there too when the pod has it.
                DnsProxy.Client client = dp.dns().client("pod " + pod.describe(),
                        () -> java.util.Optional.of(p.resolve(dp.store().current())), sockets);
                for (String loopback : ipv6Loopback ? List.of(LOOPBACK, LOOPBACK_V6) : List.of(LOOPBACK)) {
                    DnsListener dns = new DnsListener(listening, dp.dns(), ip -> client, sockets::track);
                    InetSocketAddress at = new InetSocketAddress(loopback, dp.dnsPort());
                    try {
                        dns.bind(at);
                    } catch (RuntimeException e) {
                        dns.close();
                        throw new IllegalStateException("cannot listen on " + dp.dnsPort() + " (dns, " + loopback
                                + ") in the pod: " + rootMessage(e), e);
                    }
                    pod.listening(new InpodWorkload.Listener("dns-udp", at, dns.channels().get(0)));
                    pod.listening(new InpodWorkload.Listener("dns-tcp", at, dns.channels().get(1)));
                }
            }
            return null;
        });
    }

    private interface Binder {
        Channel bind(InetSocketAddress address);
    }

    private static void bind(InpodWorkload pod, String purpose, int port, Binder binder) {
        InetSocketAddress address = new InetSocketAddress(ANY, port);
        try {
            pod.listening(new InpodWorkload.Listener(purpose, address, binder.bind(address)));
        } catch (RuntimeException e) {
            throw new IllegalStateException("cannot listen on " + port + " (" + purpose + ") in the pod: "
                    + rootMessage(e), e);
        }
    }

    /** After an agent restart: the agent says the pod still exists; we must already have it. */
    public String keep(String uid) {
        InpodWorkload pod = pods.get(uid);
        if (pod == null) {
            LOG.warnf("inpod: Keep of unknown uid %s", uid);
            return "unknown workload uid " + uid + ": send Add with its network namespace";
        }
        LOG.debugf("inpod: keeping %s", pod.describe());
        return "";
    }

    /** Stops accepting for the pod now; its open connections drain in the background. */
    public String del(String uid) {
        InpodWorkload pod = pods.get(uid);
        if (pod == null) {
            LOG.infof("inpod: Del of unknown uid %s: nothing to remove", uid);
            return "";
        }
        retire(pod, Retirement.DEL, System.nanoTime() + drainTimeout.toNanos());
        changed.run();
        return "";
    }

    /**
     * A newer ztunnel serves every pod now (its listeners are bound beside ours): stop accepting in
     * every pod and drain what is open up to the drain timeout. Completes when the last pod is
     * released. Nothing is enrolled here afterwards.
     */
    public java.util.concurrent.CompletableFuture<Void> handOver() {
        replaced = true;
        long deadline = System.nanoTime() + drainTimeout.toNanos();
        int count = 0;
        for (InpodWorkload pod : new ArrayList<>(pods.values())) {
            retire(pod, Retirement.HANDOVER, deadline);
            count++;
        }
        LOG.infof("inpod: hand-over: stopped accepting in %d pod(s); %d connection(s) open, drained within %s", count,
                draining.stream().mapToInt(InpodWorkload::activeConnections).sum(), drainTimeout);
        changed.run();
        java.util.concurrent.CompletableFuture<Void> drained = new java.util.concurrent.CompletableFuture<>();
        whenDrained(drained);
        return drained;
    }

    private void whenDrained(java.util.concurrent.CompletableFuture<Void> drained) {
        if (draining.isEmpty()) {
            drained.complete(null);
            return;
        }
        try {
            drains.schedule(() -> whenDrained(drained), 100, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            drained.complete(null); // shutting down: close() released them
        }
    }

    /** True once a newer ztunnel took the pods over. */
    public boolean replaced() {
        return replaced;
    }

    private void retire(InpodWorkload pod, Retirement why, long deadline) {
        draining.add(pod); // before it leaves pods: its certificate must stay wanted throughout
        pods.remove(pod.uid(), pod);
        pod.state(InpodWorkload.State.DRAINING);
        // With tcp_migrate_req set in the pod, connections still queued on a closing listener move to
        // the newer instance's listener on the same port instead of being reset.
        pod.stopAccepting();
        // Peers' pooled connections to this pod must not carry new streams in: only open ones finish.
        // On a Del, one still in its handshake is closed; on a hand-over it is told GOAWAY once it can
        // be (a peer that was just accepted here must not see a failure).
        pod.hboneConnections.forEach(why == Retirement.DEL ? InpodWorkloads::goAwayOrClose
                : InpodWorkloads::goAwayOnceReady);
        LOG.infof("inpod: %s %s: no longer accepting (GOAWAY on %d HBONE connection(s)%s); %d open connection(s)"
                + " may finish within %s", why == Retirement.DEL ? "removed" : "handed over", pod.describe(),
                pod.hboneConnections.size(), why == Retirement.DEL ? ", those still in their handshake closed" : "",
                pod.activeConnections(), Duration.ofNanos(Math.max(0, deadline - System.nanoTime())));
        drainLater(pod, deadline, why);
    }

    /**
     * A connection still in its TLS handshake carries no stream, and a GOAWAY cannot reach it: it is
     * closed, so that it never finishes a handshake and opens streams for a pod that is gone. The
     * others are told GOAWAY. Decided on the channel's event loop, where the HTTP/2 codec is added.
     */
    private static void goAwayOrClose(Channel ch) {
        ch.eventLoop().execute(() -> {
            if (ch.pipeline().get(Http2FrameCodec.class) == null) {
                ch.close();
            } else {
                HboneServerInitializer.goAway(ch);
            }
        });
    }

    /** A connection still in its TLS handshake gets its GOAWAY when the HTTP/2 codec is there (or it closes). */
    private static void goAwayOnceReady(Channel ch) {
        ch.eventLoop().execute(() -> {
            if (!ch.isActive()) {
                return;
            }
            if (ch.pipeline().get(Http2FrameCodec.class) == null) {
                ch.eventLoop().schedule(() -> goAwayOnceReady(ch), 50, TimeUnit.MILLISECONDS);
            } else {
                HboneServerInitializer.goAway(ch);
            }
        });
    }

    private void drainLater(InpodWorkload pod, long deadline, Retirement why) {
        try {
            drains.schedule(() -> {
                if (pod.activeConnections() == 0 || System.nanoTime() >= deadline) {
                    int cut = pod.activeConnections();
                    if (cut > 0) {
                        Counter.builder("ztunnel_inpod_drain_deadline_closed")
                                .description("Connections still open at the drain deadline, closed then, by cause")
                                .tag("cause", why.tag).register(registry).increment(cut);
                    }
                    release(pod);
                    draining.remove(pod);
                    LOG.infof("inpod: %s released%s", pod.describe(),
                            cut == 0 ? " after its connections ended" : ": drain timeout, closed " + cut
                                    + " open connection(s)");
                    changed.run();
                } else {
                    drainLater(pod, deadline, why);
                }
            }, 100, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            release(pod); // shutting down
        }
    }

    /** After SnapshotSent: every pod the agent did not name since the connection began goes. */
    public List<String> retainOnly(Set<String> named) {
        List<String> dropped = new ArrayList<>();
        for (String uid : new ArrayList<>(pods.keySet())) {
            if (!named.contains(uid)) {
                LOG.infof("inpod: %s was not in the agent's snapshot; removing it", pods.get(uid).describe());
                del(uid);
                dropped.add(uid);
            }
        }
        return dropped;
    }

    /** Closes every socket of the pod and the namespace fd. */
    private void release(InpodWorkload pod) {
        pod.stopAccepting();
        pod.sockets().closeConnections();
        pod.hboneConnections.close();
        if (pod.pool() != null) {
            pod.pool().close();
        }
        pod.sockets().netns().close();
        pod.state(InpodWorkload.State.REMOVED);
    }

    /** The threads that create sockets inside pods (their queue, what they shed). */
    SocketThreads socketThreads() {
        return socketThreads;
    }

    public Collection<InpodWorkload> enrolled() {
        return Collections.unmodifiableCollection(pods.values());
    }

    /** A pod served here (draining ones included) that runs as {@code id}, by namespace and name. */
    public Optional<RemoteCertificateSource.PodName> podWithIdentity(SpiffeId id) {
        return java.util.stream.Stream.concat(pods.values().stream(), draining.stream())
                .filter(p -> id.equals(p.identity()))
                .map(p -> new RemoteCertificateSource.PodName(p.info().getNamespace(), p.info().getName()))
                .findFirst();
    }

    public Collection<InpodWorkload> drainingNow() {
        return Collections.unmodifiableCollection(draining);
    }

    public int running() {
        return pods.size();
    }

    /** Identities whose certificates must be kept (the pods served, draining ones included). */
    public Set<SpiffeId> identities() {
        Set<SpiffeId> out = new HashSet<>();
        pods.values().forEach(p -> out.add(p.identity()));
        draining.forEach(p -> out.add(p.identity()));
        out.remove(null);
        return out;
    }

    /**
     * The pod's addresses of both families, read on a thread inside its namespace: the local routes
     * of /proc/thread-self/net/fib_trie (IPv4) and /proc/thread-self/net/if_inet6 are that thread's
     * namespace's (Java's interface list mixes in the process's view for IPv6, so it is not used).
     */
    private static List<InetAddress> podAddresses() throws IOException {
        java.util.Set<InetAddress> out = new java.util.LinkedHashSet<>();
        String last = null;
        for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/thread-self/net/fib_trie"))) {
            String t = line.trim();
            if (t.startsWith("|--")) {
                last = t.substring(3).trim();
            } else if (t.equals("/32 host LOCAL") && last != null) {
                InetAddress a = InetAddress.getByName(last);
                if (!a.isLoopbackAddress()) {
                    out.add(a);
                }
            }
        }
        for (Inet6Line l : ipv6Addresses()) {
            if (l.scope() == 0 && (l.flags() & IFA_F_DADFAILED) == 0) { // global scope: not ::1, not fe80::/10
                out.add(l.address());
            }
        }
        return new ArrayList<>(out);
    }

    /** Whether the pod's loopback has ::1 (IPv6 on in its namespace), where ip6tables REDIRECT sends DNS. */
    private static boolean hasIpv6Loopback() throws IOException {
        return ipv6Addresses().stream().anyMatch(l -> l.address().isLoopbackAddress());
    }

    private static final int IFA_F_DADFAILED = 0x08;

    /** One line of if_inet6: address (32 hex digits), interface index, prefix length, scope, flags, name. */
    private record Inet6Line(InetAddress address, int scope, int flags) {
    }

    private static List<Inet6Line> ipv6Addresses() throws IOException {
        java.nio.file.Path file = java.nio.file.Path.of("/proc/thread-self/net/if_inet6");
        if (!java.nio.file.Files.exists(file)) {
            return List.of(); // no IPv6 in this kernel
        }
        List<Inet6Line> out = new ArrayList<>();
        for (String line : java.nio.file.Files.readAllLines(file)) {
            String[] f = line.trim().split("\\s+");
            if (f.length < 6 || f[0].length() != 32) {
                continue;
            }
            out.add(new Inet6Line(InetAddress.getByAddress(java.util.HexFormat.of().parseHex(f[0])),
                    Integer.parseInt(f[3], 16), Integer.parseInt(f[4], 16)));
        }
        return out;
    }

    static String rootMessage(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        String m = c.getMessage();
        return m == null ? c.getClass().getSimpleName() : m;
    }

    @Override
    public void close() {
        for (String uid : new ArrayList<>(pods.keySet())) {
            InpodWorkload pod = pods.remove(uid);
            if (pod != null) {
                release(pod);
            }
        }
        draining.forEach(this::release);
        draining.clear();
        drains.shutdownNow();
        socketThreads.close();
    }
}
