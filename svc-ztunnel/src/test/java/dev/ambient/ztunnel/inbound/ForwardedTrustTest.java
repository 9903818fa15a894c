package dev.ambient.ztunnel.inbound;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.workload.Workload;
import dev.ambient.ztunnel.state.LocalConfigParser;
import dev.ambient.ztunnel.state.StateSnapshot;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Arrays;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Who may say where a client came from: the destination's own waypoint, found from the state. */
class ForwardedTrustTest {

    static final String MESH = """
            workloads:
            - {name: plain, namespace: shop, workloadIps: [10.0.1.1], node: n, protocol: HBONE}
            - name: by-address
              namespace: shop
              workloadIps: [10.0.1.2]
              node: n
              protocol: HBONE
              waypoint: {address: 10.0.9.1}
            - name: by-service
              namespace: shop
              workloadIps: [10.0.1.3]
              node: n
              protocol: HBONE
              services: {shop/cart.shop.svc.cluster.local: {80: 8080}}
            - name: by-vip
              namespace: shop
              workloadIps: [10.0.1.4]
              node: n
              protocol: HBONE
              waypoint: {address: 10.96.9.9}
            - {name: wp-pod, namespace: shop, serviceAccount: shop-waypoint, workloadIps: [10.0.9.1], node: n, protocol: HBONE}
            - name: wp-gw-1
              namespace: infra
              serviceAccount: gw
              workloadIps: [10.0.9.2]
              node: n
              protocol: HBONE
              status: Unhealthy
              services: {infra/gw.infra.svc.cluster.local: {15008: 15008}}
            services:
            - name: cart
              namespace: shop
              vips: [10.96.0.10]
              ports: {80: 8080}
              waypoint: {hostname: gw.infra.svc.cluster.local, namespace: infra}
            - name: gw
              namespace: infra
              vips: [10.96.9.9]
              ports: {15008: 15008}
              subjectAltNames: [spiffe://cluster.local/ns/infra/sa/gw-extra, dns:not-spiffe]
            """;

    static final StateSnapshot STATE = parse();

    static StateSnapshot parse() {
        try {
            return new LocalConfigParser().parse(MESH);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @ParameterizedTest(name = "{0}: {1}")
    @CsvSource(delimiter = '|', textBlock = """
            plain      |
            by-address | spiffe://cluster.local/ns/shop/sa/shop-waypoint
            by-service | spiffe://cluster.local/ns/infra/sa/gw spiffe://cluster.local/ns/infra/sa/gw-extra
            by-vip     | spiffe://cluster.local/ns/infra/sa/gw spiffe://cluster.local/ns/infra/sa/gw-extra
            """)
    void waypointIdentitiesComeFromTheWorkloadsAndItsServicesWaypoints(String workload, String expected) {
        Workload w = STATE.workloads().stream().filter(x -> x.getName().equals(workload)).findFirst().orElseThrow();
        Set<String> want = expected == null ? Set.of() : Arrays.stream(expected.split(" ")).collect(Collectors.toSet());
        Set<String> got = ForwardedTrust.waypointsOf(STATE, w, "cluster.local").stream().map(SpiffeId::uri)
                .collect(Collectors.toSet());
        assertEquals(want, got);
    }

    static final InetSocketAddress CONNECTION = new InetSocketAddress(InetAddress.ofLiteral("10.0.1.1"), 40000);
    static final SpiffeId PEER = SpiffeId.parse("spiffe://cluster.local/ns/shop/sa/plain");

    @ParameterizedTest(name = "{0} from waypoint={1}")
    @CsvSource(delimiter = '|', nullValues = "none", textBlock = """
            # Forwarded header            | from the waypoint? | believed address | note
            none                          | false | 10.0.1.1:40000 | 
            none                          | true  | 10.0.1.1:40000 | 
            for="10.0.7.7:1234"           | false | 10.0.1.1:40000 | forwarded header ignored: spiffe://cluster.local/ns/shop/sa/plain is not the destination's waypoint
            for="10.0.7.7:1234"           | true  | 10.0.7.7:1234  | 
            for="10.0.1.1:5555"           | false | 10.0.1.1:40000 | 
            for=garbage                   | false | 10.0.1.1:40000 | forwarded header ignored: spiffe://cluster.local/ns/shop/sa/plain is not the destination's waypoint
            for=garbage                   | true  | 10.0.1.1:40000 | forwarded header ignored: malformed
            """)
    void onlyTheWaypointIsBelieved(String header, boolean fromWaypoint, String address, String note) {
        Optional<InetSocketAddress> parsed = header == null || !header.contains(":") ? Optional.empty()
                : Optional.of(new InetSocketAddress(InetAddress.ofLiteral(header.substring(5, header.lastIndexOf(':'))),
                        Integer.parseInt(header.substring(header.lastIndexOf(':') + 1, header.length() - 1))));
        ForwardedTrust.ClientAddress c = ForwardedTrust.decide(CONNECTION, Optional.ofNullable(header), parsed, PEER,
                fromWaypoint);
        assertEquals(address, c.address().getAddress().getHostAddress() + ":" + c.address().getPort());
        assertEquals(note == null ? "" : note, c.note());
    }

    @Test
    void aServiceSanThatIsNoSpiffeIdIsNoIdentity() {
        Workload w = STATE.workloads().stream().filter(x -> x.getName().equals("by-vip")).findFirst().orElseThrow();
        assertEquals(2, ForwardedTrust.waypointsOf(STATE, w, "cluster.local").size());
    }
}
