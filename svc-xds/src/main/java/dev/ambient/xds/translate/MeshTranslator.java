package dev.ambient.xds.translate;

import com.google.protobuf.ByteString;
import com.google.protobuf.Message;
import dev.ambient.proto.workload.GatewayAddress;
import dev.ambient.proto.workload.NetworkAddress;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.proto.workload.WorkloadStatus;
import dev.ambient.xds.model.MeshSnapshot;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodCondition;
import io.fabric8.kubernetes.api.model.PodIP;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.api.model.discovery.v1.Endpoint;
import io.fabric8.kubernetes.api.model.discovery.v1.EndpointPort;
import io.fabric8.kubernetes.api.model.discovery.v1.EndpointSlice;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Turns Kubernetes objects (namespaces, pods, services, endpoint slices, Istio security policies and
 * ServiceEntries, Gateway API gateways and routes) into the small typed resources of the discovery protocol:
 * {@code Workload}, {@code Service}, {@code Authorization}, {@code PeerAuthentication},
 * {@code ServiceRoutes}, {@code L7Authorization} and {@code L7Authentication}. Pure: no I/O, no clock, no shared state;
 * thread-safe. A bad resource is reported as a {@link Problem} and skipped (or partly skipped);
 * it never stops the rest from being translated.
 */
public final class MeshTranslator {

    static final String KUBE_SERVICE_NAME = "kubernetes.io/service-name";
    /** What an empty {@code trust_domain} means to ztunnels and waypoints. */
    static final String DEFAULT_TRUST_DOMAIN = "cluster.local";

    private final TranslatorConfig config;

    public MeshTranslator(TranslatorConfig config) {
        this.config = Objects.requireNonNull(config, "config");
    }

    public MeshTranslator() {
        this(TranslatorConfig.DEFAULT);
    }

    public TranslatorConfig config() {
        return config;
    }

    public Translation translate(MeshInput input, long generation) {
        Context ctx = new Context(config, input);
        List<Message> out = new ArrayList<>();
        for (Service s : input.services()) {
            guarded(ctx, s, () -> {
                dev.ambient.proto.workload.Service t = service(ctx, s);
                if (t != null) {
                    ctx.translatedServices.put(Context.key(s), t);
                    out.add(t);
                }
            });
        }
        out.addAll(new ServiceEntryTranslator(ctx).translate(input.serviceEntries()));
        new DestinationRuleTranslator(ctx).apply(input.destinationRules(), out);
        Map<String, Map<String, PortList>> sliceMembership = endpointSliceMembership(ctx);
        for (Pod p : input.pods()) {
            guarded(ctx, p, () -> {
                Workload w = workload(ctx, p, sliceMembership.getOrDefault(Context.key(p), Map.of()));
                if (w != null) {
                    ctx.workloads.add(new Context.PodWorkload(w.getUid(), w.getNamespace(), Specs.labels(p)));
                    ctx.translatedWorkloads.add(w);
                    out.add(w);
                }
            });
        }
        AuthorizationTranslator authz = new AuthorizationTranslator(ctx);
        for (var policy : input.authorizationPolicies()) {
            guarded(ctx, policy, () -> {
                Message m = authz.translate(policy);
                if (m != null) {
                    out.add(m);
                }
            });
        }
        for (var pa : input.peerAuthentications()) {
            guarded(ctx, pa, () -> {
                Message m = authz.peerAuthentication(pa);
                if (m != null) {
                    out.add(m);
                }
            });
        }
        RequestAuthenticationTranslator authn = new RequestAuthenticationTranslator(ctx);
        for (var ra : input.requestAuthentications()) {
            guarded(ctx, ra, () -> out.add(authn.translate(ra)));
        }
        out.addAll(new RouteTranslator(ctx).translate(input.httpRoutes(), input.grpcRoutes(), input.tcpRoutes()));
        return new Translation(MeshSnapshot.of(dedupe(ctx, out), generation), ctx.problems());
    }

    /** Two resources with one discovery name (e.g. duplicates in a directory): the later wins. */
    private static List<Message> dedupe(Context ctx, List<Message> all) {
        Map<String, Message> byName = new LinkedHashMap<>();
        for (Message m : all) {
            String key = m.getDescriptorForType().getName() + " " + dev.ambient.discovery.ResourceTypes.nameOf(m);
            if (byName.put(key, m) != null) {
                ctx.problem(key.replace(' ', '/'), "defined more than once; the last definition wins");
            }
        }
        return new ArrayList<>(byName.values());
    }

    private static void guarded(Context ctx, io.fabric8.kubernetes.api.model.HasMetadata o, Runnable r) {
        try {
            if (o.getMetadata() == null || o.getMetadata().getName() == null) {
                ctx.problem(o.getKind() + "/?", "metadata.name is missing");
                return;
            }
            r.run();
        } catch (Specs.Invalid e) {
            ctx.problem(o, e.getMessage());
        } catch (RuntimeException e) {
            ctx.problem(o, "cannot be translated: " + e);
        }
    }

    // ------------------------------------------------------------------------------- services

    private dev.ambient.proto.workload.Service service(Context ctx, Service s) {
        var spec = s.getSpec();
        if (spec == null || "ExternalName".equals(spec.getType())) {
            return null;
        }
        String ns = Specs.namespace(s);
        String name = s.getMetadata().getName();
        var b = dev.ambient.proto.workload.Service.newBuilder().setName(name).setNamespace(ns)
                .setHostname(config.serviceHostname(name, ns));
        List<String> ips = spec.getClusterIPs() != null && !spec.getClusterIPs().isEmpty() ? spec.getClusterIPs()
                : spec.getClusterIP() == null ? List.of() : List.of(spec.getClusterIP());
        for (String ip : ips) {
            if (ip == null || ip.isEmpty() || ip.equals("None")) {
                continue;
            }
            b.addAddresses(NetworkAddress.newBuilder().setAddress(Specs.ipBytes(ip, "spec.clusterIPs")));
        }
        if (spec.getPorts() != null) {
            for (ServicePort sp : spec.getPorts()) {
                if (!isTcp(sp.getProtocol())) {
                    continue;
                }
                int port = Specs.port(sp.getPort(), "spec.ports.port");
                b.addPorts(Port.newBuilder().setServicePort(port).setTargetPort(numericTarget(sp.getTargetPort(), port))
                        .setAppProtocol(appProtocol(sp)));
            }
        }
        if (!ctx.isWaypointService(s)) {
            GatewayAddress wp = ctx.waypointFor(s, true);
            if (wp != null) {
                b.setWaypoint(wp);
            }
        }
        return b.build();
    }

    private static boolean isTcp(String protocol) {
        return protocol == null || protocol.isEmpty() || protocol.equals("TCP");
    }

    /** Protocols Istio recognises in a port name ("grpc", "http2-api", ...). */
    private static final Set<String> NAMED_PROTOCOLS = Set.of("http", "http2", "https", "grpc",
            "grpc-web", "tcp", "tls", "mongo", "mysql", "redis", "udp");

    /**
     * The port's application protocol as Istio reads it: appProtocol (with Kubernetes' own
     * "kubernetes.io/h2c" as http2), else a port name "protocol" or "protocol-suffix"; "" if unknown.
     */
    static String appProtocol(ServicePort sp) {
        String declared = sp.getAppProtocol();
        if (declared != null && !declared.isBlank()) {
            String p = declared.trim().toLowerCase(Locale.ROOT);
            return p.equals("kubernetes.io/h2c") ? "http2" : p;
        }
        String name = sp.getName() == null ? "" : sp.getName().toLowerCase(Locale.ROOT);
        if (name.startsWith("grpc-web")) {
            return "grpc-web";
        }
        int dash = name.indexOf('-');
        String prefix = dash < 0 ? name : name.substring(0, dash);
        return NAMED_PROTOCOLS.contains(prefix) ? prefix : "";
    }

    /** A numeric target port; 0 for a named one (resolved per workload); the port itself when absent. */
    private static int numericTarget(IntOrString target, int port) {
        if (target == null) {
            return port;
        }
        if (target.getIntVal() != null) {
            return target.getIntVal();
        }
        String s = target.getStrVal();
        if (s != null && s.matches("\\d{1,5}")) {
            return Integer.parseInt(s);
        }
        return 0;
    }

    // ------------------------------------------------------------------------------- workloads

    private Workload workload(Context ctx, Pod pod, Map<String, PortList> fromSlices) {
        var status = pod.getStatus();
        var spec = pod.getSpec();
        if (status == null || spec == null || !"Running".equals(status.getPhase())) {
            return null;
        }
        List<String> ipTexts = new ArrayList<>();
        if (status.getPodIPs() != null) {
            for (PodIP ip : status.getPodIPs()) {
                if (ip != null && ip.getIp() != null && !ip.getIp().isEmpty()) {
                    ipTexts.add(ip.getIp());
                }
            }
        }
        if (ipTexts.isEmpty() && status.getPodIP() != null && !status.getPodIP().isEmpty()) {
            ipTexts.add(status.getPodIP());
        }
        if (ipTexts.isEmpty()) {
            return null;
        }
        String ns = Specs.namespace(pod);
        String name = pod.getMetadata().getName();
        Map<String, String> labels = Specs.labels(pod);
        Workload.Builder b = Workload.newBuilder()
                .setUid(config.clusterId() + "//Pod/" + ns + "/" + name)
                .setName(name)
                .setNamespace(ns)
                .setServiceAccount(spec.getServiceAccountName() == null || spec.getServiceAccountName().isEmpty()
                        ? "default" : spec.getServiceAccountName())
                .setClusterId(config.clusterId());
        if (!config.trustDomain().equals(DEFAULT_TRUST_DOMAIN)) {
            b.setTrustDomain(config.trustDomain()); // empty means the protocol's default, cluster.local
        }
        Set<ByteString> seen = new LinkedHashSet<>();
        for (String ip : ipTexts) {
            seen.add(Specs.ipBytes(ip, "status.podIPs"));
        }
        b.addAllAddresses(seen);
        if (spec.getNodeName() != null) {
            b.setNode(spec.getNodeName());
        }
        if (status.getHostIP() != null && !status.getHostIP().isEmpty()) {
            try {
                b.setNodeAddress(Specs.ipBytes(status.getHostIP(), "status.hostIP"));
            } catch (Specs.Invalid e) {
                ctx.problem(pod, e.getMessage());
            }
        }
        b.setStatus(ready(pod) ? WorkloadStatus.HEALTHY : WorkloadStatus.UNHEALTHY);

        boolean waypointPod = ctx.isWaypointPod(pod);
        boolean hbone = tunnelsHbone(ctx, pod, waypointPod);
        b.setTunnelProtocol(hbone ? TunnelProtocol.HBONE : TunnelProtocol.NONE);

        String workloadName = workloadName(pod);
        b.setWorkloadName(workloadName);
        b.setCanonicalName(first(labels, workloadName, "service.istio.io/canonical-name", "app.kubernetes.io/name",
                "app"));
        b.setCanonicalRevision(first(labels, "latest", "service.istio.io/canonical-revision",
                "app.kubernetes.io/version", "version"));

        if (hbone && !waypointPod) {
            GatewayAddress wp = ctx.waypointFor(pod, false);
            if (wp != null) {
                b.setWaypoint(wp);
            }
        }
        Map<String, PortList> services = new LinkedHashMap<>();
        for (Service s : ctx.input.services()) {
            if (!ns.equals(Specs.namespace(s)) || s.getSpec() == null) {
                continue;
            }
            Map<String, String> selector = s.getSpec().getSelector();
            if (selector == null || selector.isEmpty() || !Specs.selects(selector, labels)) {
                continue;
            }
            dev.ambient.proto.workload.Service translated = ctx.translatedServices.get(Context.key(s));
            if (translated == null) {
                continue;
            }
            services.put(ns + "/" + translated.getHostname(), portMapping(ctx, pod, s));
        }
        fromSlices.forEach(services::putIfAbsent);
        ctx.entryMembership.getOrDefault(Context.key(pod), Map.of()).forEach(services::putIfAbsent);
        b.putAllServices(services);
        return b.build();
    }

    private static boolean tunnelsHbone(Context ctx, Pod pod, boolean waypointPod) {
        if (Boolean.TRUE.equals(pod.getSpec().getHostNetwork())) {
            return false; // the node's own address: never enrolled
        }
        if (waypointPod) {
            return true; // waypoints terminate HBONE themselves
        }
        String podMode = Specs.labels(pod).get(Context.DATAPLANE_MODE);
        if ("none".equals(podMode)) {
            return false;
        }
        if ("ambient".equals(podMode)) {
            return true;
        }
        return "ambient".equals(ctx.namespaceLabels(Specs.namespace(pod)).get(Context.DATAPLANE_MODE));
    }

    private static boolean ready(Pod pod) {
        if (pod.getMetadata().getDeletionTimestamp() != null) {
            return false;
        }
        List<PodCondition> conditions = pod.getStatus().getConditions();
        if (conditions != null) {
            for (PodCondition c : conditions) {
                if ("Ready".equals(c.getType())) {
                    return "True".equals(c.getStatus());
                }
            }
        }
        return false;
    }

    /** The owning Deployment (a ReplicaSet's name minus the pod-template-hash), else the owner, else the pod. */
    static String workloadName(Pod pod) {
        List<OwnerReference> owners = pod.getMetadata().getOwnerReferences();
        if (owners == null || owners.isEmpty()) {
            return pod.getMetadata().getName();
        }
        OwnerReference owner = owners.stream().filter(o -> Boolean.TRUE.equals(o.getController())).findFirst()
                .orElse(owners.getFirst());
        String name = owner.getName();
        if ("ReplicaSet".equals(owner.getKind())) {
            String hash = Specs.labels(pod).get("pod-template-hash");
            if (hash != null && name.endsWith("-" + hash)) {
                return name.substring(0, name.length() - hash.length() - 1);
            }
        }
        return name;
    }

    private static String first(Map<String, String> labels, String fallback, String... keys) {
        for (String k : keys) {
            String v = labels.get(k);
            if (v != null && !v.isEmpty()) {
                return v;
            }
        }
        return fallback;
    }

    /** Service port -> target port on this pod, resolving named target ports against its containers. */
    private static PortList portMapping(Context ctx, Pod pod, Service s) {
        PortList.Builder pl = PortList.newBuilder();
        if (s.getSpec().getPorts() == null) {
            return pl.build();
        }
        for (ServicePort sp : s.getSpec().getPorts()) {
            if (!isTcp(sp.getProtocol()) || sp.getPort() == null) {
                continue;
            }
            int target = numericTarget(sp.getTargetPort(), sp.getPort());
            if (target == 0) {
                String portName = sp.getTargetPort().getStrVal();
                Integer resolved = containerPort(pod, portName);
                if (resolved == null) {
                    ctx.problem(pod, "no container port named '" + portName + "' for port " + sp.getPort()
                            + " of Service " + Context.key(s));
                    continue;
                }
                target = resolved;
            }
            pl.addPorts(Port.newBuilder().setServicePort(sp.getPort()).setTargetPort(target));
        }
        return pl.build();
    }

    private static Integer containerPort(Pod pod, String name) {
        List<List<Container>> groups = new ArrayList<>();
        if (pod.getSpec().getContainers() != null) {
            groups.add(pod.getSpec().getContainers());
        }
        if (pod.getSpec().getInitContainers() != null) {
            groups.add(pod.getSpec().getInitContainers()); // native sidecars
        }
        for (List<Container> containers : groups) {
            for (Container c : containers) {
                if (c.getPorts() == null) {
                    continue;
                }
                for (ContainerPort p : c.getPorts()) {
                    if (name.equals(p.getName()) && isTcp(p.getProtocol()) && p.getContainerPort() != null) {
                        return p.getContainerPort();
                    }
                }
            }
        }
        return null;
    }

    /**
     * For services without a selector, EndpointSlices name their pods: "ns/pod" -> service key ->
     * port mapping. Endpoints whose {@code ready} condition is false are left out.
     */
    private static Map<String, Map<String, PortList>> endpointSliceMembership(Context ctx) {
        Map<String, Map<String, PortList>> out = new HashMap<>();
        for (EndpointSlice slice : ctx.input.endpointSlices()) {
            try {
                if (slice.getMetadata() == null || slice.getEndpoints() == null) {
                    continue;
                }
                String ns = Specs.namespace(slice);
                String serviceName = Specs.labels(slice).get(KUBE_SERVICE_NAME);
                if (serviceName == null) {
                    continue;
                }
                Service svc = ctx.services.get(ns + "/" + serviceName);
                dev.ambient.proto.workload.Service translated = ctx.translatedServices.get(ns + "/" + serviceName);
                if (svc == null || translated == null) {
                    continue;
                }
                Map<String, String> selector = svc.getSpec().getSelector();
                if (selector != null && !selector.isEmpty()) {
                    continue; // selector services: membership comes from the pods' labels and readiness
                }
                PortList.Builder pl = PortList.newBuilder();
                if (slice.getPorts() != null && svc.getSpec().getPorts() != null) {
                    for (EndpointPort ep : slice.getPorts()) {
                        if (!isTcp(ep.getProtocol()) || ep.getPort() == null) {
                            continue;
                        }
                        String epName = ep.getName() == null ? "" : ep.getName();
                        for (ServicePort sp : svc.getSpec().getPorts()) {
                            String spName = sp.getName() == null ? "" : sp.getName();
                            if (spName.equals(epName) && isTcp(sp.getProtocol()) && sp.getPort() != null) {
                                pl.addPorts(Port.newBuilder().setServicePort(sp.getPort()).setTargetPort(ep.getPort()));
                            }
                        }
                    }
                }
                PortList ports = pl.build();
                String serviceKey = ns + "/" + translated.getHostname();
                for (Endpoint e : slice.getEndpoints()) {
                    if (e.getTargetRef() == null || !"Pod".equals(e.getTargetRef().getKind())) {
                        continue; // endpoints without a pod (external addresses) are not supported yet
                    }
                    if (e.getConditions() != null && Boolean.FALSE.equals(e.getConditions().getReady())) {
                        continue;
                    }
                    String podNs = e.getTargetRef().getNamespace() == null ? ns : e.getTargetRef().getNamespace();
                    out.computeIfAbsent(podNs + "/" + e.getTargetRef().getName(), k -> new LinkedHashMap<>())
                            .put(serviceKey, ports);
                }
            } catch (RuntimeException e) {
                ctx.problem(slice, "cannot be translated: " + e.getMessage());
            }
        }
        return out;
    }
}
