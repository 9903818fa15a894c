package dev.ambient.xds.discovery;

import com.google.protobuf.ByteString;
import com.google.protobuf.Message;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.l7.WeightedBackend;
import dev.ambient.proto.workload.Action;
import dev.ambient.proto.workload.Authorization;
import dev.ambient.proto.workload.GatewayAddress;
import dev.ambient.proto.workload.NamespacedHostname;
import dev.ambient.proto.workload.NetworkAddress;
import dev.ambient.proto.workload.PeerAuthentication;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Scope;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.function.UnaryOperator;

/** Small synthetic resources, as the translator would produce them. */
final class Fixtures {

    private Fixtures() {
    }

    static String host(String ns, String name) {
        return name + "." + ns + ".svc.cluster.local";
    }

    static String svcKey(String ns, String name) {
        return ns + "/" + host(ns, name);
    }

    static String uid(String ns, String pod) {
        return "Kubernetes//Pod/" + ns + "/" + pod;
    }

    static byte[] ip(int n) {
        return new byte[] {10, (byte) (n >> 16), (byte) (n >> 8), (byte) n};
    }

    static Workload workload(String ns, String pod, String service, int ipN, String node) {
        Workload.Builder b = Workload.newBuilder().setUid(uid(ns, pod)).setName(pod).setNamespace(ns)
                .addAddresses(ByteString.copyFrom(ip(ipN))).setServiceAccount("default").setNode(node)
                .setTunnelProtocol(TunnelProtocol.HBONE).setCanonicalName(service).setCanonicalRevision("v1")
                .setTrustDomain("cluster.local").setClusterId("Kubernetes").setWorkloadName(service)
                .setNodeAddress(ByteString.copyFrom(new byte[] {(byte) 192, (byte) 168, 0, (byte) (node.hashCode() & 0x7f)}));
        if (service != null) {
            b.putServices(svcKey(ns, service), PortList.newBuilder().addPorts(Port.newBuilder().setServicePort(80)
                    .setTargetPort(8080)).build());
        }
        return b.build();
    }

    static Service service(String ns, String name, int vipN, String waypointNs) {
        Service.Builder b = Service.newBuilder().setName(name).setNamespace(ns).setHostname(host(ns, name))
                .addAddresses(NetworkAddress.newBuilder().setAddress(ByteString.copyFrom(new byte[] {10, 96,
                        (byte) (vipN >> 8), (byte) vipN})))
                .addPorts(Port.newBuilder().setServicePort(80).setTargetPort(8080));
        if (waypointNs != null) {
            b.setWaypoint(GatewayAddress.newBuilder().setHostname(NamespacedHostname.newBuilder()
                    .setNamespace(waypointNs).setHostname(host(waypointNs, "waypoint"))).setHboneMtlsPort(15008));
        }
        return b.build();
    }

    static Authorization authorization(String ns, String name) {
        return Authorization.newBuilder().setName(name).setNamespace(ns).setScope(Scope.NAMESPACE)
                .setAction(Action.ALLOW).build();
    }

    static PeerAuthentication peerAuthentication(String ns, String name) {
        return PeerAuthentication.newBuilder().setName(name).setNamespace(ns).setScope(Scope.NAMESPACE)
                .setMode(PeerAuthentication.Mode.STRICT).build();
    }

    static ServiceRoutes routes(String ns, String service, String... backends) {
        Route.Builder r = Route.newBuilder().setName("default");
        for (String b : backends) {
            r.addBackends(WeightedBackend.newBuilder().setService(b).setPort(80).setWeight(100 / backends.length));
        }
        return ServiceRoutes.newBuilder().setServiceNamespace(ns).setServiceHostname(host(ns, service)).addRoutes(r)
                .build();
    }

    static L7Authorization l7(String ns, String name, String... targets) {
        return L7Authorization.newBuilder().setName(name).setNamespace(ns).setAction(Action.DENY)
                .addAllTargets(List.of(targets)).build();
    }

    /** A copy of a world with the messages matching {@code which} replaced (or dropped if null). */
    static List<Message> replace(Collection<Message> world, Predicate<Message> which, UnaryOperator<Message> with) {
        List<Message> out = new ArrayList<>();
        for (Message m : world) {
            if (which.test(m)) {
                Message n = with.apply(m);
                if (n != null) {
                    out.add(n);
                }
            } else {
                out.add(m);
            }
        }
        return out;
    }

    static Predicate<Message> isWorkload(String uid) {
        return m -> m instanceof Workload w && w.getUid().equals(uid);
    }

    static Predicate<Message> isService(String key) {
        return m -> m instanceof Service s && (s.getNamespace() + "/" + s.getHostname()).equals(key);
    }

    static Message relabel(Message m, String revision) {
        return ((Workload) m).toBuilder().setCanonicalRevision(revision).build();
    }

    static Map<String, String> versions(dev.ambient.xds.model.MeshSnapshot s, String type) {
        Map<String, String> m = new java.util.HashMap<>();
        s.resources(type).forEach((n, e) -> m.put(n, e.version()));
        return m;
    }
}
