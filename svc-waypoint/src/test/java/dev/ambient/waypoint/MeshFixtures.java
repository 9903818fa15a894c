package dev.ambient.waypoint;

import com.google.protobuf.ByteString;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.L7Operation;
import dev.ambient.proto.l7.L7Rule;
import dev.ambient.proto.workload.Action;
import dev.ambient.proto.workload.NetworkAddress;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.StringMatch;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import java.net.InetAddress;
import java.net.UnknownHostException;

/** Builders for the discovery resources a waypoint receives, as svc-xds would send them. */
final class MeshFixtures {

    private MeshFixtures() {
    }

    static ByteString ip(String s) {
        try {
            return ByteString.copyFrom(InetAddress.getByName(s).getAddress());
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException(e);
        }
    }

    /** A pod backing {@code serviceKey} ("ns/hostname") with servicePort -> targetPort. */
    static Workload pod(String name, String ns, String sa, String ip, String serviceKey, int servicePort,
            int targetPort) {
        Workload.Builder w = Workload.newBuilder().setUid("Kubernetes//Pod/" + ns + "/" + name).setName(name)
                .setNamespace(ns).setServiceAccount(sa).addAddresses(ip(ip)).setNode("node-b")
                .setTunnelProtocol(TunnelProtocol.HBONE).setCanonicalName(name).setWorkloadName(name)
                .setTrustDomain("cluster.local");
        if (serviceKey != null) {
            w.putServices(serviceKey, PortList.newBuilder().addPorts(Port.newBuilder().setServicePort(servicePort)
                    .setTargetPort(targetPort)).build());
        }
        return w.build();
    }

    static Workload client(String name, String ns, String sa, String ip) {
        return pod(name, ns, sa, ip, null, 0, 0);
    }

    static Service service(String name, String ns, String vip, int port, int targetPort) {
        return service(name, ns, vip, port, targetPort, "");
    }

    /** @param appProtocol the port's declared protocol ("http", "grpc", ...), "" for none */
    static Service service(String name, String ns, String vip, int port, int targetPort, String appProtocol) {
        return Service.newBuilder().setName(name).setNamespace(ns).setHostname(name + "." + ns + ".svc.cluster.local")
                .addAddresses(NetworkAddress.newBuilder().setAddress(ip(vip)))
                .addPorts(Port.newBuilder().setServicePort(port).setTargetPort(targetPort).setAppProtocol(appProtocol))
                .build();
    }

    static String key(Service s) {
        return s.getNamespace() + "/" + s.getHostname();
    }

    static L7Authorization denyPathPrefix(String name, String ns, String target, String prefix) {
        return L7Authorization.newBuilder().setName(name).setNamespace(ns).setAction(Action.DENY).addTargets(target)
                .addRules(L7Rule.newBuilder().addTo(L7Operation.newBuilder()
                        .addPaths(StringMatch.newBuilder().setPrefix(prefix)))).build();
    }
}
