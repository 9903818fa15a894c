package dev.ambient.ztunnel.state;

import com.google.protobuf.ByteString;
import dev.ambient.proto.workload.Authorization;
import dev.ambient.proto.workload.NetworkAddress;
import dev.ambient.proto.workload.PeerAuthentication;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Scope;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.proto.workload.WorkloadStatus;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;

/**
 * Immutable view of everything the proxies need: workloads, services, L4 authorization policies
 * and peer authentication. A new snapshot is built for every configuration change and swapped
 * atomically in the {@link WorkloadStore}; every index is built once, here, so lookups on the
 * data path are hash-map reads.
 *
 * <p>{@link #of} is lenient, because it is also fed by the discovery stream, where a transient
 * inconsistency must not stop the ztunnel: duplicates are resolved deterministically (same uid,
 * same service {@code namespace/hostname}, same policy {@code namespace/name}: the later one in
 * the input wins; two workloads claiming one address: a HEALTHY one beats an UNHEALTHY one, then
 * the later wins), and malformed addresses (not 4 or 16 bytes) are skipped. Strict validation is
 * the job of the source ({@link LocalConfigParser} for the standalone file).
 */
public final class StateSnapshot {

    /** The mesh root namespace: only there does a {@link Scope#GLOBAL} resource apply mesh-wide. */
    public static final String ROOT_NAMESPACE = "istio-system";

    private static final Comparator<Authorization> POLICY_ORDER =
            Comparator.comparing(Authorization::getNamespace).thenComparing(Authorization::getName);
    private static final Comparator<PeerAuthentication> PEER_AUTH_ORDER =
            Comparator.comparing(PeerAuthentication::getNamespace).thenComparing(PeerAuthentication::getName);

    private final List<Workload> workloads;
    private final List<Service> services;
    private final List<Authorization> policies;
    private final List<PeerAuthentication> peerAuthentications;

    private final Map<String, Workload> workloadsByUid;
    private final Map<InetAddress, Workload> workloadsByAddress;
    private final Map<InetAddress, Service> servicesByVip;
    private final Map<String, Service> servicesByHostname;
    private final Map<String, List<Workload>> healthyEndpointsByService;
    private final Map<String, List<Workload>> endpointsByService;
    private final Map<String, List<Workload>> workloadsByNode;
    private final Scoped<Authorization> policyIndex;
    private final Scoped<PeerAuthentication> peerAuthIndex;

    /** The empty state: nothing known, nothing enforced. */
    public static final StateSnapshot EMPTY = of(List.of(), List.of(), List.of(), List.of());

    private StateSnapshot(Collection<Workload> workloadsIn, Collection<Service> servicesIn,
            Collection<Authorization> policiesIn, Collection<PeerAuthentication> peerAuthsIn) {
        Map<String, Workload> byUid = dedupe(workloadsIn, Workload::getUid);
        this.workloads = List.copyOf(byUid.values());
        this.workloadsByUid = Collections.unmodifiableMap(byUid);

        Map<InetAddress, Workload> byAddress = new HashMap<>();
        Map<String, List<Workload>> byNode = new HashMap<>();
        Map<String, List<Workload>> endpoints = new HashMap<>();
        Map<String, List<Workload>> allEndpoints = new HashMap<>();
        for (Workload w : workloads) {
            for (ByteString raw : w.getAddressesList()) {
                Addresses.fromBytes(raw).ifPresent(ip -> byAddress.merge(ip, w, StateSnapshot::preferHealthy));
            }
            if (!w.getNode().isEmpty()) {
                byNode.computeIfAbsent(w.getNode(), k -> new ArrayList<>()).add(w);
            }
            for (String serviceKey : w.getServicesMap().keySet()) {
                allEndpoints.computeIfAbsent(serviceKey, k -> new ArrayList<>()).add(w);
            }
            if (w.getStatus() == WorkloadStatus.HEALTHY) {
                for (String serviceKey : w.getServicesMap().keySet()) {
                    endpoints.computeIfAbsent(serviceKey, k -> new ArrayList<>()).add(w);
                }
            }
        }
        this.workloadsByAddress = byAddress;
        this.workloadsByNode = freeze(byNode);
        this.healthyEndpointsByService = freeze(endpoints);
        this.endpointsByService = freeze(allEndpoints);

        Map<String, Service> byHostname = dedupe(servicesIn, StateSnapshot::serviceKey);
        this.services = List.copyOf(byHostname.values());
        this.servicesByHostname = byHostname;
        Map<InetAddress, Service> byVip = new HashMap<>();
        for (Service s : services) {
            for (NetworkAddress vip : s.getAddressesList()) {
                Addresses.fromBytes(vip.getAddress()).ifPresent(ip -> byVip.put(ip, s));
            }
        }
        this.servicesByVip = byVip;

        this.policies = List.copyOf(dedupe(policiesIn, p -> p.getNamespace() + "/" + p.getName()).values());
        this.policyIndex = new Scoped<>(policies, POLICY_ORDER, Authorization::getNamespace,
                Authorization::getScope, Authorization::getSelectedWorkloadsList);
        this.peerAuthentications =
                List.copyOf(dedupe(peerAuthsIn, p -> p.getNamespace() + "/" + p.getName()).values());
        this.peerAuthIndex = new Scoped<>(peerAuthentications, PEER_AUTH_ORDER, PeerAuthentication::getNamespace,
                PeerAuthentication::getScope, PeerAuthentication::getSelectedWorkloadsList);
    }

    /** Builds a snapshot and all its indexes; the collections are copied. */
    public static StateSnapshot of(Collection<Workload> workloads, Collection<Service> services,
            Collection<Authorization> policies, Collection<PeerAuthentication> peerAuthentications) {
        return new StateSnapshot(Objects.requireNonNull(workloads, "workloads"),
                Objects.requireNonNull(services, "services"), Objects.requireNonNull(policies, "policies"),
                Objects.requireNonNull(peerAuthentications, "peerAuthentications"));
    }

    /** The workload with this address if it runs on {@code node}: how a ztunnel knows its own clients. */
    public Optional<Workload> workloadOnNode(InetAddress ip, String node) {
        return workloadByAddress(ip).filter(w -> w.getNode().equals(node));
    }

    /** The workload owning {@code ip} (any of its addresses). */
    public Optional<Workload> workloadByAddress(InetAddress ip) {
        return Optional.ofNullable(workloadsByAddress.get(Addresses.normalize(ip)));
    }

    public Optional<Workload> workloadByUid(String uid) {
        return Optional.ofNullable(workloadsByUid.get(uid));
    }

    /** The service one of whose VIPs is {@code vip}. */
    public Optional<Service> serviceByAddress(InetAddress vip) {
        return Optional.ofNullable(servicesByVip.get(Addresses.normalize(vip)));
    }

    public Optional<Service> serviceByHostname(String namespace, String hostname) {
        return Optional.ofNullable(servicesByHostname.get(namespace + "/" + hostname));
    }

    /**
     * The HEALTHY workloads whose {@code services} map has the key {@code "<namespace>/<hostname>"}
     * of {@code s}, in input order.
     */
    public List<Workload> healthyEndpoints(Service s) {
        return healthyEndpointsByService.getOrDefault(serviceKey(s), List.of());
    }

    /** Every workload backing {@code s}, healthy or not (e.g. a waypoint still draining), in input order. */
    public List<Workload> endpoints(Service s) {
        return endpointsByService.getOrDefault(serviceKey(s), List.of());
    }

    /**
     * The port to dial on {@code endpoint} for {@code servicePort} of {@code s}: the workload's own
     * mapping for the service first (a non-zero target there wins), then the service's ports; a
     * target of 0 means "same as the service port". Returns -1 if neither the service nor the
     * workload's mapping knows {@code servicePort}.
     */
    public int targetPort(Workload endpoint, Service s, int servicePort) {
        PortList own = endpoint.getServicesMap().get(serviceKey(s));
        boolean ownListsPort = false;
        if (own != null) {
            for (Port p : own.getPortsList()) {
                if (p.getServicePort() == servicePort) {
                    if (p.getTargetPort() != 0) {
                        return p.getTargetPort();
                    }
                    ownListsPort = true;
                }
            }
        }
        for (Port p : s.getPortsList()) {
            if (p.getServicePort() == servicePort) {
                return p.getTargetPort() != 0 ? p.getTargetPort() : servicePort;
            }
        }
        return ownListsPort ? servicePort : -1;
    }

    /** The workloads scheduled on {@code node}, in input order. */
    public List<Workload> workloadsOnNode(String node) {
        return workloadsByNode.getOrDefault(node, List.of());
    }

    /**
     * The authorization policies applying to {@code w}: GLOBAL ones (scope GLOBAL in the root
     * namespace {@value #ROOT_NAMESPACE}), then those of its namespace (scope NAMESPACE, or GLOBAL
     * outside the root namespace), then WORKLOAD_SELECTOR ones listing its uid. Within each group
     * ordered by namespace/name.
     */
    public List<Authorization> policiesFor(Workload w) {
        return policyIndex.applying(w);
    }

    /**
     * The peer-authentication mode for inbound traffic to {@code w} on {@code port}. The most
     * specific PeerAuthentication wins: workload-selector, then namespace, then global (when
     * several exist at one level, the first by namespace/name is used). At the chosen level a
     * port-level mode for {@code port} beats the policy's mode; a level whose mode is UNSET (and
     * has no port-level mode for {@code port}) inherits from the next one. Default PERMISSIVE.
     */
    public PeerAuthentication.Mode peerAuthenticationMode(Workload w, int port) {
        for (List<PeerAuthentication> level : peerAuthIndex.levels(w)) {
            if (level.isEmpty()) {
                continue;
            }
            PeerAuthentication pa = level.getFirst();
            PeerAuthentication.Mode portMode = pa.getPortModesMap().get(port);
            if (isSet(portMode)) {
                return portMode;
            }
            if (isSet(pa.getMode())) {
                return pa.getMode();
            }
        }
        return PeerAuthentication.Mode.PERMISSIVE;
    }

    public Collection<Workload> workloads() {
        return workloads;
    }

    public Collection<Service> services() {
        return services;
    }

    public Collection<Authorization> policies() {
        return policies;
    }

    public Collection<PeerAuthentication> peerAuthentications() {
        return peerAuthentications;
    }

    @Override
    public String toString() {
        return "StateSnapshot[" + workloads.size() + " workloads, " + services.size() + " services, "
                + policies.size() + " policies, " + peerAuthentications.size() + " peer authentications]";
    }

    /** The key a workload's {@code services} map uses for {@code s}: {@code "<namespace>/<hostname>"}. */
    public static String serviceKey(Service s) {
        return s.getNamespace() + "/" + s.getHostname();
    }

    private static boolean isSet(PeerAuthentication.Mode mode) {
        return mode != null && mode != PeerAuthentication.Mode.UNSET && mode != PeerAuthentication.Mode.UNRECOGNIZED;
    }

    private static Workload preferHealthy(Workload existing, Workload candidate) {
        boolean existingHealthy = existing.getStatus() == WorkloadStatus.HEALTHY;
        boolean candidateHealthy = candidate.getStatus() == WorkloadStatus.HEALTHY;
        return existingHealthy && !candidateHealthy ? existing : candidate;
    }

    private static <T> Map<String, T> dedupe(Collection<T> items, Function<T, String> key) {
        Map<String, T> out = new LinkedHashMap<>();
        for (T item : items) {
            out.put(key.apply(Objects.requireNonNull(item, "null element")), item);
        }
        return out;
    }

    private static <T> Map<String, List<T>> freeze(Map<String, List<T>> map) {
        Map<String, List<T>> out = new HashMap<>(map.size() * 2);
        map.forEach((k, v) -> out.put(k, List.copyOf(v)));
        return out;
    }

    /** Index of scoped resources (policies, peer authentications) by how they select workloads. */
    private static final class Scoped<T> {
        private final List<T> global;
        private final Map<String, List<T>> byNamespace;
        private final Map<String, List<T>> byUid;

        Scoped(List<T> items, Comparator<T> order, Function<T, String> namespace, Function<T, Scope> scope,
                Function<T, List<String>> selected) {
            List<T> sorted = new ArrayList<>(items);
            sorted.sort(order);
            List<T> g = new ArrayList<>();
            Map<String, List<T>> ns = new HashMap<>();
            Map<String, List<T>> uid = new HashMap<>();
            for (T item : sorted) {
                switch (scope.apply(item)) {
                    case GLOBAL -> {
                        if (ROOT_NAMESPACE.equals(namespace.apply(item))) {
                            g.add(item);
                        } else {
                            ns.computeIfAbsent(namespace.apply(item), k -> new ArrayList<>()).add(item);
                        }
                    }
                    case NAMESPACE -> ns.computeIfAbsent(namespace.apply(item), k -> new ArrayList<>()).add(item);
                    case WORKLOAD_SELECTOR -> {
                        for (String u : selected.apply(item)) {
                            List<T> list = uid.computeIfAbsent(u, k -> new ArrayList<>());
                            if (!list.contains(item)) {
                                list.add(item);
                            }
                        }
                    }
                    default -> {
                        // an unknown scope (newer control plane) selects nothing
                    }
                }
            }
            this.global = List.copyOf(g);
            this.byNamespace = freeze(ns);
            this.byUid = freeze(uid);
        }

        /** Most specific first: workload selector, namespace, global. */
        List<List<T>> levels(Workload w) {
            return List.of(byUid.getOrDefault(w.getUid(), List.of()),
                    byNamespace.getOrDefault(w.getNamespace(), List.of()), global);
        }

        /** Global, namespace, workload selector. */
        List<T> applying(Workload w) {
            List<T> ns = byNamespace.getOrDefault(w.getNamespace(), List.of());
            List<T> sel = byUid.getOrDefault(w.getUid(), List.of());
            if (ns.isEmpty() && sel.isEmpty()) {
                return global;
            }
            List<T> out = new ArrayList<>(global.size() + ns.size() + sel.size());
            out.addAll(global);
            out.addAll(ns);
            out.addAll(sel);
            return Collections.unmodifiableList(out);
        }
    }
}
