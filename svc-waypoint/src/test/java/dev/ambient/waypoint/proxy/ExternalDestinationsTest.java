package dev.ambient.waypoint.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.ByteString;
import dev.ambient.proto.workload.NetworkAddress;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.waypoint.state.WaypointState;
import java.net.InetAddress;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * What an external name may resolve to: the table of addresses a hostile DNS could hand the
 * waypoint, against one configuration (a mesh pod and its node, a Kubernetes Service, a
 * MESH_EXTERNAL ServiceEntry with a static endpoint, and one whose endpoint is a pod's address).
 */
class ExternalDestinationsTest {

    static ByteString ip(String s) throws Exception {
        return ByteString.copyFrom(InetAddress.getByName(s).getAddress());
    }

    static final ExternalDestinations destinations;

    static {
        try {
            Service reviews = Service.newBuilder().setName("reviews").setNamespace("bookinfo")
                    .setHostname("reviews.bookinfo.svc.cluster.local")
                    .addAddresses(NetworkAddress.newBuilder().setAddress(ip("10.96.0.20")))
                    .addPorts(Port.newBuilder().setServicePort(80)).build();
            Service partner = Service.newBuilder().setName("partner").setNamespace("egress").setHostname("db.partner")
                    .addAddresses(NetworkAddress.newBuilder().setAddress(ip("192.168.50.10"))) // real, not virtual
                    .addPorts(Port.newBuilder().setServicePort(5432)).setMeshExternal(true).build();
            Service sneaky = partner.toBuilder().setName("sneaky").setHostname("sneaky.example.com").clearAddresses()
                    .build();
            Workload pod = Workload.newBuilder().setUid("c//Pod/bookinfo/reviews-1").setName("reviews-1")
                    .setNamespace("bookinfo").setTunnelProtocol(TunnelProtocol.HBONE).addAddresses(ip("10.244.1.7"))
                    .setNode("node-b").setNodeAddress(ip("172.18.0.3"))
                    .putServices("bookinfo/reviews.bookinfo.svc.cluster.local", PortList.getDefaultInstance()).build();
            Workload partnerEndpoint = Workload.newBuilder().setUid("c/networking.istio.io/ServiceEntry/egress/partner")
                    .setName("partner").setNamespace("egress").addAddresses(ip("192.168.50.11"))
                    .putServices("egress/db.partner", PortList.getDefaultInstance()).build();
            // A ServiceEntry's author names a mesh pod's address as "external".
            Workload sneakyEndpoint = partnerEndpoint.toBuilder().setName("sneaky").clearAddresses()
                    .addAddresses(ip("10.244.1.7")).clearServices()
                    .putServices("egress/sneaky.example.com", PortList.getDefaultInstance()).build();
            WaypointState state = WaypointState.of(List.of(pod, partnerEndpoint, sneakyEndpoint),
                    List.of(reviews, partner, sneaky), List.of(), List.of());
            destinations = new ExternalDestinations(() -> state, List.of(ExternalDestinations.Cidr.parse("10.250.0.0/17"),
                    ExternalDestinations.Cidr.parse("fd00:ec2::254")));
        } catch (Exception e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    static Optional<String> refusal(String address) throws Exception {
        return destinations.refusal(InetAddress.getByName(address), true);
    }

    @Test
    void theMeshsOwnAddressesAreRefusedWithTheirOwner() throws Exception {
        assertEquals(Optional.of("10.244.1.7 is an address of the mesh (workload bookinfo/reviews-1)"),
                refusal("10.244.1.7"));
        assertEquals(Optional.of("172.18.0.3 is an address of the mesh (node node-b of workload bookinfo/reviews-1)"),
                refusal("172.18.0.3"));
        assertEquals(Optional.of("10.96.0.20 is an address of the mesh (service bookinfo/reviews.bookinfo.svc.cluster"
                + ".local)"), refusal("10.96.0.20"));
    }

    @Test
    void anExternalServiceEntrysAddressesAndPrivateRangesAreReachable() throws Exception {
        assertEquals(Optional.empty(), refusal("192.168.50.10"), "a MESH_EXTERNAL ServiceEntry's own address");
        assertEquals(Optional.empty(), refusal("192.168.50.11"), "its static endpoint");
        assertEquals(Optional.empty(), refusal("10.1.2.3"), "RFC 1918 is not refused as such");
        assertEquals(Optional.empty(), refusal("93.184.215.14"));
    }

    @Test
    void deniedNetworksAndThisHostAreRefused() throws Exception {
        assertEquals(Optional.of("10.250.127.255 is in a denied network (10.250.0.0/17, waypoint.upstream"
                + ".denied-cidrs)"), refusal("10.250.127.255"));
        assertEquals(Optional.empty(), refusal("10.250.128.0"), "just past the /17");
        assertEquals(Optional.of("fd00:ec2:0:0:0:0:0:254 is in a denied network (fd00:ec2::254, waypoint.upstream"
                + ".denied-cidrs)"), refusal("fd00:ec2::254"));
        assertEquals(Optional.of("127.0.0.1 is loopback, wildcard, link-local or multicast, never a destination"
                + " outside the mesh"), refusal("127.0.0.1"));
        assertEquals(true, refusal("::ffff:169.254.169.254").isPresent(), "an IPv4-mapped metadata address");
    }

    @Test
    void anAddressFromTheConfigurationIsCheckedOnlyForLoopbackAndLinkLocal() throws Exception {
        assertEquals(Optional.empty(), destinations.refusal(InetAddress.getByName("10.244.1.7"), false),
                "a pod outside the mesh that a service selects, a STATIC endpoint: what the configuration says");
        assertEquals(Optional.empty(), destinations.refusal(InetAddress.getByName("10.250.0.1"), false));
        assertEquals(true, destinations.refusal(InetAddress.getByName("169.254.169.254"), false).isPresent());
    }

    @Test
    void aMalformedBlockStopsTheStart() {
        assertEquals("waypoint.upstream.denied-cidrs: '10.0.0.0/33' has no prefix length from 0 to 32",
                assertThrows(IllegalArgumentException.class, () -> ExternalDestinations.Cidr.parse("10.0.0.0/33"))
                        .getMessage());
        assertEquals("waypoint.upstream.denied-cidrs: 'pods.internal/16' is not an address block (ip/prefix-length)",
                assertThrows(IllegalArgumentException.class, () -> ExternalDestinations.Cidr.parse("pods.internal/16"))
                        .getMessage());
    }
}
