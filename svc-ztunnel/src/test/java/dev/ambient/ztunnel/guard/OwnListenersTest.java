package dev.ambient.ztunnel.guard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.ztunnel.guard.OwnListeners.Listener;
import dev.ambient.ztunnel.guard.OwnListeners.Where;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The self-target decision as a table: the listeners of a ztunnel as configured in a cluster (node
 * 10.0.0.5, also 172.17.0.1 on another interface, captures on 127.0.0.1, metrics and probes on all
 * addresses), asked about destinations a client could name on each path.
 */
class OwnListenersTest {

    static final Where WORKLOADS = new Where.AtLocalWorkloads();

    static final OwnListeners NODE = new OwnListeners(List.of(
            new Listener("HBONE", 15008, WORKLOADS),
            new Listener("outbound capture", 15001, WORKLOADS),
            new Listener("outbound capture", 15001, at("127.0.0.1")),
            new Listener("inbound plaintext", 15006, WORKLOADS),
            new Listener("inbound plaintext", 15006, at("127.0.0.1")),
            new Listener("DNS", 15053, WORKLOADS),
            new Listener("DNS", 15053, at("127.0.0.1")),
            new Listener("SOCKS5", 15080, at("10.0.0.5")),
            new Listener("admin", 15000, at("127.0.0.1")),
            new Listener("metrics", 15020, at("0.0.0.0")),
            new Listener("readiness", 15021, at("0.0.0.0"))),
            Set.of(ip("10.0.0.5"), ip("172.17.0.1")));

    @ParameterizedTest(name = "{0}:{1} local={2} -> {3}")
    @CsvSource(textBlock = """
            # destination, port, a local workload's address?, expected listener (- = not ours)
            # inbound: HBONE authority / 15006 original destination, always a local workload
            10.1.2.3,      15008, true,  HBONE
            10.1.2.3,      15006, true,  inbound plaintext
            10.1.2.3,      15001, true,  outbound capture
            10.1.2.3,      15053, true,  DNS
            10.1.2.3,      8080,  true,  -
            10.1.2.3,      15000, true,  -
            # outbound: the same ports of a workload elsewhere are another ztunnel's (it refuses them)
            10.9.9.9,      15008, false, -
            10.9.9.9,      15006, false, -
            # a pod's own loopback (in-pod, 0.0.0.0 inside the pod) and this host's loopback
            127.0.0.1,     15001, false, outbound capture
            127.0.0.1,     15006, false, inbound plaintext
            127.0.0.1,     15053, false, DNS
            127.0.0.53,    15008, false, HBONE
            ::1,           15001, false, outbound capture
            127.0.0.1,     15000, false, admin
            127.0.0.2,     15000, false, -
            127.0.0.1,     8080,  false, -
            # the node's own addresses
            10.0.0.5,      15080, false, SOCKS5
            172.17.0.1,    15080, false, -
            10.0.0.5,      15020, false, metrics
            172.17.0.1,    15021, false, readiness
            127.0.0.9,     15020, false, metrics
            10.0.0.5,      15008, false, HBONE
            10.0.0.5,      22,    false, -
            # the unspecified address is this host, whatever the port
            0.0.0.0,       8080,  false, unspecified-address
            ::,            15008, false, unspecified-address
            # IPv4-mapped IPv6 is the IPv4 address
            ::ffff:127.0.0.1, 15000, false, admin
            """, commentCharacter = '#')
    void decides(String address, int port, boolean localWorkload, String expected) {
        SelfTarget t = NODE.check(new InetSocketAddress(ip(address), port), localWorkload);
        if (expected.equals("-")) {
            assertEquals(SelfTarget.ELSEWHERE, t);
        } else {
            SelfTarget.Own own = (SelfTarget.Own) t;
            assertEquals(expected, own.listener());
            assertTrue(own.reason().contains(port + " is this ztunnel's own " + expected + " listener"), own.reason());
        }
    }

    @ParameterizedTest(name = "capture ports disabled: {0}:{1}")
    @CsvSource({"10.1.2.3, 15001", "127.0.0.1, 15006"})
    void portsNotListenedOnAreNotOurs(String address, int port) {
        OwnListeners hboneOnly = new OwnListeners(List.of(new Listener("HBONE", 15008, WORKLOADS)), Set.of());
        assertEquals(SelfTarget.ELSEWHERE, hboneOnly.check(new InetSocketAddress(ip(address), port), true));
    }

    static Where at(String address) {
        return new Where.At(ip(address));
    }

    static InetAddress ip(String literal) {
        return InetAddress.ofLiteral(literal);
    }
}
