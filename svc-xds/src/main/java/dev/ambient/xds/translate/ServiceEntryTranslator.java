package dev.ambient.xds.translate;

import com.google.protobuf.ByteString;
import com.google.protobuf.Message;
import dev.ambient.proto.workload.GatewayAddress;
import dev.ambient.proto.workload.NetworkAddress;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.proto.workload.WorkloadStatus;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Pod;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * {@code networking.istio.io} ServiceEntry to discovery resources, as Istio's ambient control plane
 * does: one {@code Service} per host (hostname = the host, in the entry's namespace), with the
 * entry's addresses or an auto-allocated one ({@link AutoAllocation}), its ports and protocols,
 * its waypoint ({@code istio.io/use-waypoint}), exportTo and resolution; one {@code Workload} per
 * inline endpoint (resolution STATIC or DNS) or, for resolution DNS without endpoints, per host,
 * named by a hostname the ztunnel resolves when a connection is made; and, for a workloadSelector,
 * the selected pods list the entry's hosts among their services. A bad field is reported with its
 * path and skipped where the rest still means what the user wrote; otherwise the entry is skipped.
 */
final class ServiceEntryTranslator {

    private static final Set<String> SPEC_KEYS = Set.of("hosts", "addresses", "ports", "location", "resolution",
            "endpoints", "workloadSelector", "exportTo", "subjectAltNames");
    private static final Set<String> PORT_KEYS = Set.of("number", "protocol", "name", "targetPort");
    private static final Set<String> ENDPOINT_KEYS = Set.of("address", "ports", "labels", "network", "locality",
            "weight", "serviceAccount");
    private static final Set<String> PROTOCOLS = Set.of("HTTP", "HTTPS", "HTTP2", "GRPC", "GRPC-WEB", "TCP", "TLS",
            "MONGO", "MYSQL", "REDIS");
    private static final Pattern HOST = Pattern.compile(
            "(\\*\\.)?([a-z0-9_]([-a-z0-9_]{0,61}[a-z0-9_])?\\.)*[a-z0-9_]([-a-z0-9_]{0,61}[a-z0-9_])?");
    private static final Pattern NAMESPACE = Pattern.compile("[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?");

    enum Resolution { NONE, STATIC, DNS }

    /** An entry as read and checked, before addresses are allocated. */
    private record Entry(GenericKubernetesResource resource, String namespace, String name, List<String> hosts,
            List<ByteString> addresses, List<ServicePortSpec> ports, boolean external, Resolution resolution,
            List<EndpointSpec> endpoints, Map<String, String> selector, List<String> exportTo,
            List<String> subjectAltNames) {
    }

    private record ServicePortSpec(int number, int targetPort, String name, String appProtocol) {
    }

    /** An inline endpoint: an address (IP) or, with resolution DNS, a host name. */
    private record EndpointSpec(String text, ByteString ip, Map<String, Integer> ports, String serviceAccount) {
    }

    private final Context ctx;

    ServiceEntryTranslator(Context ctx) {
        this.ctx = ctx;
    }

    /** Services and endpoint workloads; fills {@link Context#entryMembership} for selected pods. */
    List<Message> translate(List<GenericKubernetesResource> entries) {
        List<Entry> read = new ArrayList<>();
        for (GenericKubernetesResource r : entries) {
            if (r.getMetadata() == null || r.getMetadata().getName() == null) {
                ctx.problem("ServiceEntry/?", "metadata.name is missing");
                continue;
            }
            try {
                read.add(read(r));
            } catch (Specs.Invalid e) {
                ctx.problem(r, e.getMessage());
            } catch (RuntimeException e) {
                ctx.problem(r, "cannot be translated: " + e);
            }
        }
        Map<String, byte[]> allocated = allocate(read);
        List<Message> out = new ArrayList<>();
        for (Entry e : read) {
            try {
                emit(e, allocated, out);
            } catch (Specs.Invalid ex) {
                ctx.problem(e.resource(), ex.getMessage());
            }
        }
        return out;
    }

    // ------------------------------------------------------------------------------- reading

    private Entry read(GenericKubernetesResource r) {
        Map<String, Object> spec = Specs.spec(r);
        Specs.onlyKeys(spec, "spec", SPEC_KEYS);
        Resolution resolution = enumValue(spec.get("resolution"), "spec.resolution", Resolution.class, Resolution.NONE);
        String location = Specs.string(spec.get("location"), "spec.location");
        boolean external;
        if (location == null || location.equals("MESH_EXTERNAL")) {
            external = true; // Istio's default
        } else if (location.equals("MESH_INTERNAL")) {
            external = false;
        } else {
            throw new Specs.Invalid("spec.location: must be MESH_EXTERNAL or MESH_INTERNAL, got '" + location + "'");
        }
        List<String> hosts = hosts(r, spec, resolution);
        if (hosts.isEmpty()) {
            throw new Specs.Invalid("spec.hosts: at least one valid host is required");
        }
        List<ByteString> addresses = addresses(r, spec);
        List<ServicePortSpec> ports = ports(r, spec);
        Map<String, String> selector = null;
        if (spec.get("workloadSelector") != null) {
            Map<String, Object> ws = Specs.map(spec.get("workloadSelector"), "spec.workloadSelector");
            Specs.onlyKeys(ws, "spec.workloadSelector", Set.of("labels"));
            selector = Specs.matchLabels(ws.get("labels"), "spec.workloadSelector.labels");
        }
        List<EndpointSpec> endpoints = endpoints(r, spec, resolution, selector != null);
        return new Entry(r, Specs.namespace(r), r.getMetadata().getName(), hosts, addresses, ports, external,
                resolution, endpoints, selector, exportTo(r, spec), Specs.strings(spec.get("subjectAltNames"),
                        "spec.subjectAltNames"));
    }

    private List<String> hosts(GenericKubernetesResource r, Map<String, Object> spec, Resolution resolution) {
        List<String> hosts = new ArrayList<>();
        List<String> written = Specs.strings(spec.get("hosts"), "spec.hosts");
        boolean hasEndpoints = !Specs.list(spec.get("endpoints"), "spec.endpoints").isEmpty();
        for (int i = 0; i < written.size(); i++) {
            String path = "spec.hosts[" + i + "]";
            String h = written.get(i).trim().toLowerCase(Locale.ROOT);
            if (h.endsWith(".")) {
                h = h.substring(0, h.length() - 1);
            }
            if (h.length() > 253 || !HOST.matcher(h).matches()) {
                ctx.problem(r, path + ": not a host name (a DNS name, optionally '*.' first): '" + written.get(i)
                        + "'; host skipped");
            } else if (h.startsWith("*") && resolution == Resolution.DNS && !hasEndpoints) {
                ctx.problem(r, path + ": a wildcard host cannot be resolved by DNS without endpoints: '" + h
                        + "'; host skipped");
            } else if (!hosts.contains(h)) {
                hosts.add(h);
            }
        }
        return hosts;
    }

    private List<ByteString> addresses(GenericKubernetesResource r, Map<String, Object> spec) {
        List<ByteString> out = new ArrayList<>();
        List<String> written = Specs.strings(spec.get("addresses"), "spec.addresses");
        for (int i = 0; i < written.size(); i++) {
            String path = "spec.addresses[" + i + "]";
            try {
                var cidr = Specs.cidr(written.get(i).trim(), path);
                if (cidr.getLength() != cidr.getAddress().size() * 8) {
                    ctx.problem(r, path + ": address ranges are not supported, only single addresses: '"
                            + written.get(i) + "'; address skipped");
                } else if (!out.contains(cidr.getAddress())) {
                    out.add(cidr.getAddress());
                }
            } catch (Specs.Invalid e) {
                ctx.problem(r, e.getMessage() + "; address skipped");
            }
        }
        return out;
    }

    /** Reads each item of a list field; a bad item is reported with its path and skipped. */
    private <T> List<T> each(GenericKubernetesResource r, List<Map<String, Object>> written, String field,
            String what, Set<String> keys, java.util.function.BiFunction<String, Map<String, Object>, T> reader) {
        List<T> out = new ArrayList<>();
        for (int i = 0; i < written.size(); i++) {
            String path = field + "[" + i + "]";
            try {
                Specs.onlyKeys(written.get(i), path, keys);
                out.add(reader.apply(path, written.get(i)));
            } catch (Specs.Invalid e) {
                ctx.problem(r, e.getMessage() + "; " + what + " skipped");
            }
        }
        return out;
    }

    private List<ServicePortSpec> ports(GenericKubernetesResource r, Map<String, Object> spec) {
        Set<Integer> numbers = new HashSet<>();
        return each(r, Specs.maps(spec.get("ports"), "spec.ports"), "spec.ports", "port", PORT_KEYS, (path, p) -> {
            int number = Specs.port(p.get("number"), path + ".number");
            int target = p.get("targetPort") == null ? 0 : Specs.port(p.get("targetPort"), path + ".targetPort");
            String protocol = Specs.string(p.get("protocol"), path + ".protocol");
            String app = "";
            if (protocol != null) {
                String upper = protocol.toUpperCase(Locale.ROOT);
                if (upper.equals("UDP")) {
                    throw new Specs.Invalid(path + ".protocol: UDP is not carried by the mesh");
                }
                if (!PROTOCOLS.contains(upper)) {
                    throw new Specs.Invalid(path + ".protocol: unknown protocol '" + protocol + "' (one of "
                            + new java.util.TreeSet<>(PROTOCOLS) + ")");
                }
                app = upper.toLowerCase(Locale.ROOT);
            }
            if (!numbers.add(number)) {
                throw new Specs.Invalid(path + ".number: port " + number + " is listed twice");
            }
            String name = Specs.string(p.get("name"), path + ".name");
            return new ServicePortSpec(number, target, name == null ? "" : name, app);
        });
    }

    private List<EndpointSpec> endpoints(GenericKubernetesResource r, Map<String, Object> spec, Resolution resolution,
            boolean hasSelector) {
        List<Map<String, Object>> written = Specs.maps(spec.get("endpoints"), "spec.endpoints");
        if (written.isEmpty()) {
            return List.of();
        }
        if (resolution == Resolution.NONE) {
            ctx.problem(r, "spec.endpoints: resolution NONE sends connections where the client dialled; endpoints"
                    + " are ignored");
            return List.of();
        }
        if (hasSelector) {
            ctx.problem(r, "spec.endpoints: an entry has either endpoints or a workloadSelector; endpoints ignored");
            return List.of();
        }
        return each(r, written, "spec.endpoints", "endpoint", ENDPOINT_KEYS, (path, e) -> {
            String address = Specs.string(e.get("address"), path + ".address");
            if (address == null || address.isBlank()) {
                throw new Specs.Invalid(path + ".address: required");
            }
            address = address.trim();
            ByteString ip = null;
            try {
                ip = Specs.ipBytes(address, path + ".address");
            } catch (Specs.Invalid notIp) {
                String host = address.toLowerCase(Locale.ROOT);
                if (resolution != Resolution.DNS || host.startsWith("*") || !HOST.matcher(host).matches()) {
                    throw new Specs.Invalid(path + ".address: not an IP address"
                            + (resolution == Resolution.DNS ? " or host name" : " (resolution STATIC)")
                            + ": '" + address + "'");
                }
                address = host;
            }
            Map<String, Integer> ports = new LinkedHashMap<>();
            Specs.map(e.get("ports"), path + ".ports").forEach((name, value) ->
                    ports.put(name, Specs.port(value, path + ".ports." + name)));
            return new EndpointSpec(address, ip, ports, Specs.string(e.get("serviceAccount"),
                    path + ".serviceAccount"));
        });
    }

    /** Namespaces that see the entry; empty = all; a list that names no valid namespace = none. */
    private List<String> exportTo(GenericKubernetesResource r, Map<String, Object> spec) {
        List<String> written = Specs.strings(spec.get("exportTo"), "spec.exportTo");
        if (written.isEmpty()) {
            return List.of();
        }
        Set<String> out = new LinkedHashSet<>();
        for (int i = 0; i < written.size(); i++) {
            String v = written.get(i).trim();
            switch (v) {
                case "*" -> {
                    return List.of();
                }
                case "." -> out.add(Specs.namespace(r));
                case "~" -> {
                    // exported nowhere: adds no namespace
                }
                default -> {
                    if (NAMESPACE.matcher(v).matches()) {
                        out.add(v);
                    } else {
                        ctx.problem(r, "spec.exportTo[" + i + "]: not a namespace, '.', '*' or '~': '" + v
                                + "'; ignored");
                    }
                }
            }
        }
        // "~" (or nothing valid): a name no namespace can have, so the service is seen by nobody.
        return out.isEmpty() ? List.of("~") : List.copyOf(out);
    }

    private static <E extends Enum<E>> E enumValue(Object o, String path, Class<E> type, E fallback) {
        String s = Specs.string(o, path);
        if (s == null) {
            return fallback;
        }
        try {
            return Enum.valueOf(type, s);
        } catch (IllegalArgumentException e) {
            throw new Specs.Invalid(path + ": must be one of " + java.util.Arrays.toString(type.getEnumConstants())
                    + ", got '" + s + "'");
        }
    }

    // ------------------------------------------------------------------------------- allocation

    private static boolean needsAddress(Entry e, String host) {
        return e.addresses().isEmpty() && e.resolution() != Resolution.NONE && !host.startsWith("*");
    }

    private Map<String, byte[]> allocate(List<Entry> entries) {
        Set<Integer> taken = new HashSet<>();
        for (var s : ctx.translatedServices.values()) {
            s.getAddressesList().forEach(a -> mark(taken, a.getAddress()));
        }
        List<AutoAllocation.Request> requests = new ArrayList<>();
        for (Entry e : entries) {
            e.addresses().forEach(a -> mark(taken, a));
            for (String h : e.hosts()) {
                if (needsAddress(e, h)) {
                    requests.add(new AutoAllocation.Request(e.namespace(), h,
                            e.resource().getMetadata().getCreationTimestamp()));
                }
            }
        }
        Map<String, byte[]> out = AutoAllocation.allocate(requests, taken);
        for (AutoAllocation.Request r : requests) {
            if (!out.containsKey(r.key())) {
                ctx.problem("ServiceEntry/" + r.namespace() + "/?", "host " + r.host() + ": no free address left in "
                        + AutoAllocation.RANGE + "; it has no virtual address");
            }
        }
        return out;
    }

    private static void mark(Set<Integer> taken, ByteString address) {
        int offset = AutoAllocation.offsetInRange(address.toByteArray());
        if (offset >= 0) {
            taken.add(offset);
        }
    }

    // ------------------------------------------------------------------------------- emitting

    private void emit(Entry e, Map<String, byte[]> allocated, List<Message> out) {
        GatewayAddress waypoint = ctx.waypointFor(e.resource(), true);
        List<String> serviceKeys = new ArrayList<>();
        for (String host : e.hosts()) {
            Service.Builder s = Service.newBuilder().setName(e.name()).setNamespace(e.namespace()).setHostname(host)
                    .addAllExportTo(e.exportTo()).addAllSubjectAltNames(e.subjectAltNames())
                    .setMeshExternal(e.external())
                    .setResolution(e.resolution() == Resolution.NONE ? Service.Resolution.PASSTHROUGH
                            : Service.Resolution.ENDPOINTS);
            List<ByteString> addresses = e.addresses();
            byte[] auto = allocated.get(e.namespace() + "/" + host);
            if (addresses.isEmpty() && auto != null) {
                addresses = List.of(ByteString.copyFrom(auto));
            }
            addresses.forEach(a -> s.addAddresses(NetworkAddress.newBuilder().setAddress(a)));
            for (ServicePortSpec p : e.ports()) {
                s.addPorts(Port.newBuilder().setServicePort(p.number()).setTargetPort(p.targetPort())
                        .setAppProtocol(p.appProtocol()));
            }
            if (waypoint != null) {
                s.setWaypoint(waypoint);
            }
            Service built = s.build();
            ctx.translatedEntries.add(built);
            out.add(built);
            serviceKeys.add(e.namespace() + "/" + host);
        }
        switch (e.resolution()) {
            case NONE -> {
                // connections go where the client dialled: no endpoints
            }
            case STATIC, DNS -> {
                if (e.selector() != null) {
                    selectPods(e, serviceKeys);
                } else if (!e.endpoints().isEmpty()) {
                    for (EndpointSpec ep : e.endpoints()) {
                        out.add(endpointWorkload(e, ep.text(), ep.ip(), ep.serviceAccount(),
                                portMapping(e, ep.ports()), serviceKeys));
                    }
                } else if (e.resolution() == Resolution.DNS) {
                    for (String host : e.hosts()) {
                        out.add(endpointWorkload(e, host, null, null, portMapping(e, Map.of()),
                                List.of(e.namespace() + "/" + host)));
                    }
                }
            }
        }
    }

    /** Service port to the endpoint's port: the endpoint's port of that name, else 0 (the service's target). */
    private static PortList portMapping(Entry e, Map<String, Integer> endpointPorts) {
        PortList.Builder b = PortList.newBuilder();
        for (ServicePortSpec p : e.ports()) {
            Integer own = endpointPorts.get(p.name());
            b.addPorts(Port.newBuilder().setServicePort(p.number()).setTargetPort(own == null ? 0 : own));
        }
        return b.build();
    }

    private Workload endpointWorkload(Entry e, String address, ByteString ip, String serviceAccount, PortList ports,
            List<String> serviceKeys) {
        Workload.Builder w = Workload.newBuilder()
                .setUid(ctx.config.clusterId() + "/networking.istio.io/ServiceEntry/" + e.namespace() + "/" + e.name()
                        + "/" + address)
                .setName(e.name()).setNamespace(e.namespace())
                .setServiceAccount(serviceAccount == null || serviceAccount.isEmpty() ? "default" : serviceAccount)
                .setClusterId(ctx.config.clusterId())
                .setTunnelProtocol(TunnelProtocol.NONE)
                .setStatus(WorkloadStatus.HEALTHY)
                .setWorkloadName(e.name()).setCanonicalName(e.name()).setCanonicalRevision("latest");
        if (ip != null) {
            w.addAddresses(ip);
        } else {
            w.setHostname(address);
        }
        serviceKeys.forEach(k -> w.putServices(k, ports));
        return w.build();
    }

    private void selectPods(Entry e, List<String> serviceKeys) {
        PortList.Builder b = PortList.newBuilder();
        for (ServicePortSpec p : e.ports()) {
            b.addPorts(Port.newBuilder().setServicePort(p.number()).setTargetPort(p.targetPort()));
        }
        PortList ports = b.build();
        for (Pod pod : ctx.input.pods()) {
            if (pod.getMetadata() == null || pod.getMetadata().getName() == null
                    || !e.namespace().equals(Specs.namespace(pod)) || !Specs.selects(e.selector(), Specs.labels(pod))) {
                continue;
            }
            Map<String, PortList> m = ctx.entryMembership.computeIfAbsent(Context.key(pod), k -> new LinkedHashMap<>());
            serviceKeys.forEach(k -> m.putIfAbsent(k, ports));
        }
    }
}
