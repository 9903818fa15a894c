package dev.ambient.ztunnel.inbound;

import dev.ambient.hbone.HboneAdmission;
import dev.ambient.hbone.HboneServerInitializer;
import dev.ambient.hbone.HboneSettings;
import dev.ambient.identity.SpiffeId;
import dev.ambient.net.Transport;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.ztunnel.identity.WorkloadCertificates;
import dev.ambient.ztunnel.identity.WorkloadIdentity;
import dev.ambient.ztunnel.state.StateSnapshot;
import io.netty.channel.Channel;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;
import org.jboss.logging.Logger;

/**
 * Keeps one HBONE listener (port 15008) per address of each HBONE workload on this node, bound to
 * that address: the address a connection arrives on says which workload, and so which certificate
 * to present, exactly as in-pod mode does with one listener per pod network namespace. Follows
 * the state: new workloads get listeners, departed ones lose them (open tunnels finish). All
 * listeners count their connections in one {@link HboneAdmission}, the node's.
 */
public final class InboundListeners implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(InboundListeners.class);

    /** What a listener serves; a change of identity means a new listener. */
    public record Listener(InetSocketAddress address, String workloadUid, SpiffeId identity) {
    }

    private final Transport transport;
    private final String nodeName;
    private final int port;
    private final String trustDomain;
    private final WorkloadCertificates certificates;
    private final HboneSettings settings;
    private final HboneAdmission admission;
    private final BiFunction<String, SpiffeId, InboundHandler> handlers;
    private final Map<Listener, Channel> bound = new HashMap<>();
    private final Map<Listener, String> failed = new HashMap<>();
    private volatile java.util.function.Predicate<Workload> servedInPod = w -> false;
    private volatile java.util.function.Supplier<java.util.Set<SpiffeId>> inPodIdentities = java.util.Set::of;

    public InboundListeners(Transport transport, String nodeName, int port, String trustDomain,
            WorkloadCertificates certificates, HboneSettings settings, HboneAdmission admission,
            BiFunction<String, SpiffeId, InboundHandler> handlers) {
        this.transport = transport;
        this.nodeName = nodeName;
        this.port = port;
        this.trustDomain = trustDomain;
        this.certificates = certificates;
        this.settings = settings;
        this.admission = admission;
        this.handlers = handlers;
    }

    /**
     * In-pod mode: workloads the ztunnel serves from inside their own network namespace get no
     * listener here, and their identities' certificates are kept.
     */
    public void servedInPod(java.util.function.Predicate<Workload> servedInPod,
            java.util.function.Supplier<java.util.Set<SpiffeId>> inPodIdentities) {
        this.servedInPod = servedInPod;
        this.inPodIdentities = inPodIdentities;
    }

    /** Brings the listeners in line with the state; called after every state change. */
    public synchronized void reconcile(StateSnapshot state) {
        Map<Listener, Workload> wanted = new HashMap<>();
        for (Workload w : state.workloadsOnNode(nodeName)) {
            if (w.getTunnelProtocol() != TunnelProtocol.HBONE || servedInPod.test(w)) {
                continue;
            }
            SpiffeId id = WorkloadIdentity.of(w, trustDomain);
            for (var raw : w.getAddressesList()) {
                try {
                    InetAddress ip = InetAddress.getByAddress(raw.toByteArray());
                    wanted.put(new Listener(new InetSocketAddress(ip, port), w.getUid(), id), w);
                } catch (java.net.UnknownHostException e) {
                    LOG.warnf("workload %s has a malformed address; skipped", w.getUid());
                }
            }
        }
        bound.entrySet().removeIf(e -> {
            if (!wanted.containsKey(e.getKey())) {
                LOG.infof("inbound: stopped listening on %s for %s (workload gone or changed)", e.getKey().address(),
                        e.getKey().workloadUid());
                e.getValue().close();
                return true;
            }
            return false;
        });
        failed.keySet().retainAll(wanted.keySet());
        java.util.Set<SpiffeId> identities = new java.util.HashSet<>();
        wanted.keySet().forEach(l -> identities.add(l.identity()));
        for (Listener l : wanted.keySet()) {
            if (bound.containsKey(l) || failed.containsKey(l)) {
                continue;
            }
            certificates.forIdentity(l.identity());
            bind(l);
        }
        identities.addAll(inPodIdentities.get());
        certificates.retainOnly(identities);
    }

    private void bind(Listener l) {
        InboundHandler handler = handlers.apply(l.workloadUid(), l.identity());
        var tls = new HboneServerInitializer(
                () -> certificates.current(l.identity()).map(WorkloadCertificates.TlsMaterial::server).orElse(null),
                settings, admission, handler);
        try {
            Channel ch = transport.listen(l.address(), tls.acceptGate(), tls);
            bound.put(l, ch);
            LOG.infof("inbound: listening for HBONE on %s as %s (workload %s)", l.address(), l.identity(),
                    l.workloadUid());
        } catch (Exception e) { // Netty rethrows the bind's IOException unchecked-style
            String why = e.getMessage();
            failed.put(l, why);
            LOG.warnf("inbound: cannot listen on %s for %s: %s", l.address(), l.workloadUid(), why);
        }
    }

    public synchronized List<Listener> listening() {
        return List.copyOf(bound.keySet());
    }

    public synchronized Map<Listener, String> failures() {
        return Map.copyOf(failed);
    }

    @Override
    public synchronized void close() {
        bound.values().forEach(Channel::close);
        bound.clear();
    }
}
