package dev.ambient.xds.translate;

import dev.ambient.proto.workload.GatewayAddress;
import dev.ambient.proto.workload.NamespacedHostname;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Pod;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** What the parts of one translation share: the input's indexes, the published workloads, problems. */
final class Context {

    static final String DATAPLANE_MODE = "istio.io/dataplane-mode";
    static final String USE_WAYPOINT = "istio.io/use-waypoint";
    static final String USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace";
    static final String WAYPOINT_FOR = "istio.io/waypoint-for";
    static final String GATEWAY_NAME = "gateway.networking.k8s.io/gateway-name";
    static final int DEFAULT_HBONE_PORT = 15008;

    /** A published workload and the pod labels that policies select on. */
    record PodWorkload(String uid, String namespace, Map<String, String> labels) {
    }

    final TranslatorConfig config;
    final MeshInput input;
    private final Set<Problem> problems = new LinkedHashSet<>();
    final Map<String, Map<String, String>> namespaceLabels = new HashMap<>();
    /** "ns/name" -> Gateway, every class. */
    final Map<String, GenericKubernetesResource> gateways = new HashMap<>();
    /** "ns/name" -> Service. */
    final Map<String, io.fabric8.kubernetes.api.model.Service> services = new HashMap<>();
    /** "ns/name" -> translated Service (filled by the service translation). */
    final Map<String, dev.ambient.proto.workload.Service> translatedServices = new HashMap<>();
    /** ServiceEntry hosts as services (filled by the ServiceEntry translation). */
    final List<dev.ambient.proto.workload.Service> translatedEntries = new ArrayList<>();
    /** "ns/pod" -> ServiceEntry services its workloadSelector gives the pod (service key -> ports). */
    final Map<String, Map<String, dev.ambient.proto.workload.PortList>> entryMembership = new HashMap<>();
    /** Filled by the workload translation. */
    final List<PodWorkload> workloads = new ArrayList<>();
    /** The published workloads themselves (filled by the workload translation), for ext_authz providers' endpoints. */
    final List<dev.ambient.proto.workload.Workload> translatedWorkloads = new ArrayList<>();

    Context(TranslatorConfig config, MeshInput input) {
        this.config = config;
        this.input = input;
        for (Namespace n : input.namespaces()) {
            namespaceLabels.put(n.getMetadata().getName(), Specs.labels(n));
        }
        for (GenericKubernetesResource g : input.gateways()) {
            gateways.put(key(g), g);
        }
        for (io.fabric8.kubernetes.api.model.Service s : input.services()) {
            services.put(key(s), s);
        }
    }

    static String key(HasMetadata o) {
        return Specs.namespace(o) + "/" + o.getMetadata().getName();
    }

    /** The services of a ServiceEntry (one per host), once the ServiceEntry translation ran. */
    List<dev.ambient.proto.workload.Service> entryServices(String namespace, String name) {
        return translatedEntries.stream().filter(s -> s.getNamespace().equals(namespace) && s.getName().equals(name))
                .toList();
    }

    void problem(String resource, String reason) {
        problems.add(new Problem(resource, reason));
    }

    void problem(HasMetadata o, String reason) {
        problem(Specs.id(o), reason);
    }

    List<Problem> problems() {
        List<Problem> out = new ArrayList<>(problems);
        out.sort(null);
        return out;
    }

    Map<String, String> namespaceLabels(String ns) {
        return namespaceLabels.getOrDefault(ns, Map.of());
    }

    boolean isWaypoint(GenericKubernetesResource gateway) {
        Object cls = Specs.spec(gateway).get("gatewayClassName");
        return config.waypointClass().equals(cls);
    }

    GenericKubernetesResource waypoint(String namespace, String name) {
        GenericKubernetesResource g = gateways.get(namespace + "/" + name);
        return g != null && isWaypoint(g) ? g : null;
    }

    /** Pods of a waypoint Deployment carry the Gateway's name (Istio's deployment controller convention). */
    boolean isWaypointPod(Pod pod) {
        String gw = Specs.labels(pod).get(GATEWAY_NAME);
        return gw != null && waypoint(Specs.namespace(pod), gw) != null;
    }

    /** The waypoint's own Service is named like its Gateway. */
    boolean isWaypointService(io.fabric8.kubernetes.api.model.Service s) {
        String gw = Specs.labels(s).get(GATEWAY_NAME);
        return waypoint(Specs.namespace(s), gw != null ? gw : s.getMetadata().getName()) != null;
    }

    /**
     * The waypoint that must see traffic for {@code o} (a pod or a service): its own
     * {@code istio.io/use-waypoint} label, else its namespace's; {@code none} opts out. Istio's
     * {@code istio.io/waypoint-for} label on the Gateway decides what it serves: {@code service}
     * (the default), {@code workload}, {@code all} or {@code none}.
     */
    GatewayAddress waypointFor(HasMetadata o, boolean forService) {
        String ns = Specs.namespace(o);
        Map<String, String> own = Specs.labels(o);
        String name;
        String waypointNs;
        String carrier;
        if (own.containsKey(USE_WAYPOINT)) {
            name = own.get(USE_WAYPOINT);
            waypointNs = own.getOrDefault(USE_WAYPOINT_NAMESPACE, ns);
            carrier = Specs.id(o);
        } else {
            Map<String, String> nsLabels = namespaceLabels(ns);
            if (!nsLabels.containsKey(USE_WAYPOINT)) {
                return null;
            }
            name = nsLabels.get(USE_WAYPOINT);
            waypointNs = nsLabels.getOrDefault(USE_WAYPOINT_NAMESPACE, ns);
            carrier = "Namespace/" + ns;
        }
        if (name == null || name.isEmpty() || name.equals("none")) {
            return null;
        }
        GenericKubernetesResource gw = waypoint(waypointNs, name);
        if (gw == null) {
            problem(carrier, USE_WAYPOINT + ": no waypoint " + waypointNs + "/" + name + " (a Gateway of class "
                    + config.waypointClass() + ")");
            return null;
        }
        String serves = Specs.labels(gw).getOrDefault(WAYPOINT_FOR, "service");
        boolean applies = serves.equals("all") || serves.equals(forService ? "service" : "workload");
        return applies ? gatewayAddress(gw) : null;
    }

    GatewayAddress gatewayAddress(GenericKubernetesResource gw) {
        String ns = Specs.namespace(gw);
        GatewayAddress.Builder b = GatewayAddress.newBuilder().setHostname(NamespacedHostname.newBuilder()
                .setNamespace(ns).setHostname(config.serviceHostname(gw.getMetadata().getName(), ns)));
        try {
            for (Map<String, Object> l : Specs.maps(Specs.spec(gw).get("listeners"), "spec.listeners")) {
                if ("HBONE".equals(l.get("protocol"))) {
                    int port = Specs.port(l.get("port"), "spec.listeners.port");
                    if (port != DEFAULT_HBONE_PORT) {
                        b.setHboneMtlsPort(port);
                    }
                    break;
                }
            }
        } catch (Specs.Invalid e) {
            problem(gw, e.getMessage());
        }
        return b.build();
    }
}
