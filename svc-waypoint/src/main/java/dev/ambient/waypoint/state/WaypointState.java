package dev.ambient.waypoint.state;

import dev.ambient.proto.l7.L7Authentication;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.workload.NetworkAddress;
import dev.ambient.proto.workload.OriginatedTls;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.proto.workload.WorkloadStatus;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What this waypoint serves, as one immutable snapshot indexed for the data path: services by VIP
 * and by "namespace/hostname", workloads by address and uid, each service's endpoints, its route
 * table, and the L7 policies (authorization and RequestAuthentication). Swapped whole on every configuration change.
 */
public final class WaypointState {

    public static final WaypointState EMPTY = of(List.of(), List.of(), List.of(), List.of());

    /**
     * An endpoint of a service: the workload and the port it listens on for that service port. One
     * known by name only (a ServiceEntry with resolution DNS) has no address until it is dialled;
     * {@code tls} is the TLS the waypoint originates to it, if a DestinationRule asks for it.
     */
    public record Endpoint(Workload workload, InetAddress address, int port, String hostname, OriginatedTls tls) {
        public Endpoint(Workload workload, InetAddress address, int port) {
            this(workload, address, port, null, null);
        }

        public String uid() {
            return workload.getUid();
        }

        /** Outside the mesh (not an HBONE peer): dialled directly, in plain TCP or originated TLS. */
        public boolean external() {
            return workload.getTunnelProtocol() != TunnelProtocol.HBONE;
        }

        /** "ip:port", or "name:port" for an endpoint known by name. */
        public String describe() {
            return (address != null ? address.getHostAddress() : hostname) + ":" + port;
        }
    }

    private final List<Workload> workloads;
    private final List<Service> services;
    private final Map<String, Workload> workloadByUid = new HashMap<>();
    private final Map<InetAddress, Workload> workloadByAddress = new HashMap<>();
    private final Map<InetAddress, Service> serviceByAddress = new HashMap<>();
    private final Map<String, Service> serviceByKey = new HashMap<>();
    private final Map<String, List<Workload>> backingWorkloads = new HashMap<>();
    private final Map<String, ServiceRoutes> routes = new HashMap<>();
    private final List<L7Authorization> policies;
    private final List<L7Authentication> authentications;
    /** Addresses that belong to the mesh itself, with what owns each (for the refusal's log line). */
    private final Map<InetAddress, String> meshAddressOwners = new HashMap<>();

    private WaypointState(List<Workload> workloads, List<Service> services, List<ServiceRoutes> routes,
            List<L7Authorization> policies, List<L7Authentication> authentications) {
        this.workloads = List.copyOf(workloads);
        this.services = List.copyOf(services);
        this.policies = List.copyOf(policies);
        this.authentications = List.copyOf(authentications);
        for (Workload w : workloads) {
            workloadByUid.put(w.getUid(), w);
            for (var raw : w.getAddressesList()) {
                workloadByAddress.put(address(raw.toByteArray()), w);
            }
            for (String key : w.getServicesMap().keySet()) {
                backingWorkloads.computeIfAbsent(key, k -> new ArrayList<>()).add(w);
            }
        }
        for (Service s : services) {
            serviceByKey.put(key(s), s);
            for (NetworkAddress a : s.getAddressesList()) {
                serviceByAddress.put(address(a.getAddress().toByteArray()), s);
            }
        }
        for (ServiceRoutes r : routes) {
            this.routes.put(r.getServiceNamespace() + "/" + r.getServiceHostname(), r);
        }
        indexMeshAddresses();
    }

    /**
     * The mesh's own addresses: every workload's but a MESH_EXTERNAL ServiceEntry endpoint's (one
     * that backs external services only), the nodes they run on, and the virtual addresses of the
     * services inside the mesh. A ServiceEntry naming a pod's address as its endpoint does not make
     * that pod external.
     */
    private void indexMeshAddresses() {
        for (Service s : services) {
            if (!s.getMeshExternal()) {
                for (NetworkAddress a : s.getAddressesList()) {
                    meshAddressOwners.putIfAbsent(address(a.getAddress().toByteArray()), "service " + key(s));
                }
            }
        }
        for (Workload w : workloads) {
            boolean external = !w.getServicesMap().isEmpty() && w.getServicesMap().keySet().stream()
                    .allMatch(k -> serviceByKey.containsKey(k) && serviceByKey.get(k).getMeshExternal());
            if (external) {
                continue;
            }
            String owner = "workload " + w.getNamespace() + "/" + w.getName();
            for (var raw : w.getAddressesList()) {
                meshAddressOwners.put(address(raw.toByteArray()), owner);
            }
            if (!w.getNodeAddress().isEmpty()) {
                meshAddressOwners.putIfAbsent(address(w.getNodeAddress().toByteArray()), "node " + w.getNode()
                        + " of " + owner);
            }
        }
    }

    /** What in the mesh owns {@code ip} (a workload, its node, a service's virtual address), if anything. */
    public Optional<String> meshAddressOwner(InetAddress ip) {
        return Optional.ofNullable(meshAddressOwners.get(ip));
    }

    public static WaypointState of(List<Workload> workloads, List<Service> services, List<ServiceRoutes> routes,
            List<L7Authorization> policies) {
        return new WaypointState(workloads, services, routes, policies, List.of());
    }

    public static WaypointState of(List<Workload> workloads, List<Service> services, List<ServiceRoutes> routes,
            List<L7Authorization> policies, List<L7Authentication> authentications) {
        return new WaypointState(workloads, services, routes, policies, authentications);
    }

    public static String key(Service s) {
        return s.getNamespace() + "/" + s.getHostname();
    }

    public Optional<Service> serviceByAddress(InetAddress vip) {
        return Optional.ofNullable(serviceByAddress.get(vip));
    }

    public Optional<Service> serviceByKey(String namespaceHostname) {
        return Optional.ofNullable(serviceByKey.get(namespaceHostname));
    }

    public Optional<Workload> workloadByAddress(InetAddress ip) {
        return Optional.ofNullable(workloadByAddress.get(ip));
    }

    public Optional<Workload> workloadByUid(String uid) {
        return Optional.ofNullable(workloadByUid.get(uid));
    }

    /** The route table of a service, if an HTTPRoute attaches to it. */
    public Optional<ServiceRoutes> routes(Service s) {
        return Optional.ofNullable(routes.get(key(s)));
    }

    public List<L7Authorization> policies() {
        return policies;
    }

    /** The RequestAuthentications of this waypoint's Gateway and services. */
    public List<L7Authentication> authentications() {
        return authentications;
    }

    public List<Workload> workloads() {
        return workloads;
    }

    public List<Service> services() {
        return services;
    }

    public int routeTables() {
        return routes.size();
    }

    /** The declared application protocol of a service port ("" when none, or no such port). */
    public static String appProtocol(Service s, int servicePort) {
        for (var p : s.getPortsList()) {
            if (p.getServicePort() == servicePort) {
                return p.getAppProtocol();
            }
        }
        return "";
    }

    /** Healthy endpoints of a service for one of its ports, with the target port each listens on. */
    public List<Endpoint> endpoints(Service s, int servicePort) {
        List<Endpoint> out = new ArrayList<>();
        String key = key(s);
        for (Workload w : backingWorkloads.getOrDefault(key, List.of())) {
            boolean byName = w.getAddressesCount() == 0 && !w.getHostname().isEmpty()
                    && w.getTunnelProtocol() != TunnelProtocol.HBONE;
            if (w.getStatus() != WorkloadStatus.HEALTHY || (w.getAddressesCount() == 0 && !byName)) {
                continue;
            }
            int target = targetPort(w.getServicesMap().get(key), s, servicePort);
            if (target > 0) {
                OriginatedTls tls = w.getTunnelProtocol() == TunnelProtocol.HBONE ? null : originatedTls(s, servicePort);
                out.add(byName ? new Endpoint(w, null, target, w.getHostname(), tls)
                        : new Endpoint(w, address(w.getAddresses(0).toByteArray()), target, null, tls));
            }
        }
        return out;
    }

    /** The TLS to originate to a service port's endpoints: its own entry, else the one for every port. */
    static OriginatedTls originatedTls(Service s, int servicePort) {
        OriginatedTls any = null;
        for (OriginatedTls t : s.getOriginatedTlsList()) {
            if (t.getPort() == servicePort) {
                return t;
            }
            if (t.getPort() == 0) {
                any = t;
            }
        }
        return any;
    }

    /**
     * The workload's own port for a service port, else the service's target port (a ServiceEntry
     * endpoint without a port of its own lists 0), else the service port; as the ztunnel reads it.
     */
    private static int targetPort(PortList mapping, Service s, int servicePort) {
        boolean listed = false;
        if (mapping != null) {
            for (var p : mapping.getPortsList()) {
                if (p.getServicePort() == servicePort) {
                    if (p.getTargetPort() != 0) {
                        return p.getTargetPort();
                    }
                    listed = true;
                }
            }
        }
        for (var p : s.getPortsList()) {
            if (p.getServicePort() == servicePort) {
                return p.getTargetPort() == 0 ? servicePort : p.getTargetPort();
            }
        }
        return listed ? servicePort : -1;
    }

    public static InetAddress address(byte[] raw) {
        try {
            return InetAddress.getByAddress(raw);
        } catch (UnknownHostException e) {
            throw new IllegalStateException("malformed address in state", e);
        }
    }
}
