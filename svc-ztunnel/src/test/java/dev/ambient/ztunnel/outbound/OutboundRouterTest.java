package dev.ambient.ztunnel.outbound;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.ByteString;
import dev.ambient.proto.workload.GatewayAddress;
import dev.ambient.proto.workload.NamespacedHostname;
import dev.ambient.proto.workload.NetworkAddress;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.ztunnel.guard.OwnListeners;
import dev.ambient.ztunnel.state.StateSnapshot;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Outbound routing of ServiceEntries and the outbound traffic policy, as a table: a client in
 * namespace {@code shop} (or {@code other}) connects to a destination; the route is written as
 * {@code via target} ({@code hbone-waypoint 10.0.9.1:15008}, {@code passthrough-dns api.origin.example:443},
 * {@code refused <words of the reason>}).
 */
class OutboundRouterTest {

    static final Workload CLIENT = workload("client", "shop", "10.0.0.1", TunnelProtocol.HBONE).setNode("node-a")
            .build();
    static final Workload OTHER_CLIENT = workload("other", "other", "10.0.0.2", TunnelProtocol.HBONE)
            .setNode("node-a").build();

    static final StateSnapshot STATE = StateSnapshot.of(List.of(CLIENT, OTHER_CLIENT,
            // a plain pod outside the mesh, and a mesh pod elsewhere
            workload("legacy", "legacy", "10.0.5.5", TunnelProtocol.NONE).build(),
            workload("httpbin", "shop", "10.0.6.6", TunnelProtocol.HBONE).setNode("node-b")
                    .addAddresses(ByteString.copyFrom(InetAddress.ofLiteral("fd00::6:6").getAddress())) // dual-stack
                    .putServices("shop/httpbin.shop.svc.cluster.local", ports(80, 8080)).build(),
            // ServiceEntry endpoints: an address (STATIC), a name (DNS)
            workload("db", "egress", "198.51.100.7", TunnelProtocol.NONE)
                    .putServices("egress/db.example", ports(5432, 15432)).build(),
            Workload.newBuilder().setUid("se/api").setName("api").setNamespace("egress").setHostname("api.origin.example")
                    .putServices("egress/api.example.com", ports(443, 0)).build(),
            workload("waypoint", "egress", "10.0.9.1", TunnelProtocol.HBONE)
                    .putServices("egress/egress-waypoint.egress.svc.cluster.local", ports(15008, 0)).build()),
            List.of(service("httpbin", "shop", "httpbin.shop.svc.cluster.local", "10.96.0.20", 80)
                            .addAddresses(NetworkAddress.newBuilder()
                                    .setAddress(ByteString.copyFrom(InetAddress.ofLiteral("fd00:96::20").getAddress())))
                            .build(),
                    service("db", "egress", "db.example", "240.240.0.7", 5432).build(),
                    service("api", "egress", "api.example.com", "240.240.0.8", 443).build(),
                    service("private", "egress", "private.example", "240.240.0.9", 443).addExportTo("egress").build(),
                    service("wiki", "egress", "wiki.example", "192.0.2.80", 443)
                            .setResolution(Service.Resolution.PASSTHROUGH).build(),
                    service("guarded", "egress", "guarded.example", "240.240.0.10", 443)
                            .setWaypoint(GatewayAddress.newBuilder().setHostname(NamespacedHostname.newBuilder()
                                    .setNamespace("egress").setHostname("egress-waypoint.egress.svc.cluster.local")))
                            .build(),
                    service("egress-waypoint", "egress", "egress-waypoint.egress.svc.cluster.local", "10.96.9.1", 15008)
                            .build()),
            List.of(), List.of());

    static final OwnListeners OWN = new OwnListeners(List.of(
            new OwnListeners.Listener("HBONE", 15008, new OwnListeners.Where.AtLocalWorkloads()),
            new OwnListeners.Listener("DNS", 15053, new OwnListeners.Where.AtLocalWorkloads())), Set.of());

    @ParameterizedTest(name = "{0} from {1} to {2}: {4}")
    @CsvSource(textBlock = """
            # policy,     client, destination,        port, expected route
            ALLOW_ANY,    shop,   240.240.0.7,        5432, passthrough 198.51.100.7:15432
            ALLOW_ANY,    shop,   240.240.0.8,        443,  passthrough-dns api.origin.example:443
            ALLOW_ANY,    shop,   192.0.2.80,         443,  passthrough 192.0.2.80:443
            ALLOW_ANY,    shop,   240.240.0.10,       443,  hbone-waypoint 10.0.9.1:15008
            ALLOW_ANY,    shop,   240.240.0.8,        80,   refused has no port 80
            # exportTo: egress only; from shop it is an unknown address
            ALLOW_ANY,    shop,   240.240.0.9,        443,  passthrough 240.240.0.9:443
            REGISTRY_ONLY, shop,  240.240.0.9,        443,  refused REGISTRY_ONLY
            # the outbound traffic policy
            ALLOW_ANY,    shop,   203.0.113.50,       443,  passthrough 203.0.113.50:443
            REGISTRY_ONLY, shop,  203.0.113.50,       443,  refused not a known workload, service or ServiceEntry
            REGISTRY_ONLY, shop,  240.240.0.8,        443,  passthrough-dns api.origin.example:443
            REGISTRY_ONLY, shop,  192.0.2.80,         443,  passthrough 192.0.2.80:443
            REGISTRY_ONLY, shop,  10.0.5.5,           8080, passthrough 10.0.5.5:8080
            REGISTRY_ONLY, shop,  198.51.100.7,       15432, passthrough 198.51.100.7:15432
            REGISTRY_ONLY, shop,  10.96.0.20,         80,   hbone 10.0.6.6:15008
            REGISTRY_ONLY, shop,  10.0.6.6,           8080, hbone 10.0.6.6:15008
            # dual-stack: a VIP of one family reaches the endpoint's address of that family
            ALLOW_ANY,    shop,   fd00:96::20,        80,   hbone [fd00::6:6]:15008
            ALLOW_ANY,    shop,   10.96.0.20,         80,   hbone 10.0.6.6:15008
            REGISTRY_ONLY, shop,  fd00::6:6,          8080, hbone [fd00::6:6]:15008
            ALLOW_ANY,    shop,   2001:db8::50,       443,  passthrough [2001:db8::50]:443
            REGISTRY_ONLY, shop,  2001:db8::50,       443,  refused not a known workload, service or ServiceEntry
            # the guard still comes first: a local workload's DNS port is ours
            ALLOW_ANY,    other,  10.0.0.1,           15053, refused own DNS listener
            REGISTRY_ONLY, other, 127.0.0.1,          15053, refused own DNS listener
            """, commentCharacter = '#')
    void routes(String policy, String client, String destination, int port, String expected) {
        OutboundRouter router = new OutboundRouter("cluster.local", 15008, OWN,
                OutboundRouter.TrafficPolicy.of(policy));
        Workload source = client.equals("shop") ? CLIENT : OTHER_CLIENT;
        Route r = router.route(STATE, source, new InetSocketAddress(InetAddress.ofLiteral(destination), port));
        String got = switch (r) {
            case Route.Hbone h -> h.via() + " " + addr(h.endpoint());
            case Route.Passthrough p -> p.via() + " " + addr(p.target());
            case Route.ByName n -> n.via() + " " + n.hostname() + ":" + n.port();
            case Route.Refused f -> "refused " + f.reason();
        };
        if (expected.startsWith("refused ")) {
            String words = expected.substring("refused ".length());
            assertEquals(true, got.startsWith("refused ") && got.contains(words), got);
        } else {
            assertEquals(expected, got);
        }
    }

    static String addr(InetSocketAddress a) {
        return dev.ambient.hbone.Authority.format(a);
    }

    static Workload.Builder workload(String name, String ns, String ip, TunnelProtocol protocol) {
        return Workload.newBuilder().setUid("Kubernetes//Pod/" + ns + "/" + name).setName(name).setNamespace(ns)
                .setServiceAccount(name).setTunnelProtocol(protocol)
                .addAddresses(ByteString.copyFrom(InetAddress.ofLiteral(ip).getAddress()));
    }

    static PortList ports(int port, int target) {
        return PortList.newBuilder().addPorts(Port.newBuilder().setServicePort(port).setTargetPort(target)).build();
    }

    static Service.Builder service(String name, String ns, String host, String vip, int port) {
        return Service.newBuilder().setName(name).setNamespace(ns).setHostname(host)
                .addAddresses(NetworkAddress.newBuilder()
                        .setAddress(ByteString.copyFrom(InetAddress.ofLiteral(vip).getAddress())))
                .addPorts(Port.newBuilder().setServicePort(port));
    }
}
