package dev.ambient.ztunnel.inpod;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ambient.ztunnel.ZtunnelNode;
import dev.ambient.ztunnel.admin.AdminServer;
import dev.ambient.ztunnel.dns.Dig;
import dev.ambient.ztunnel.state.Addresses;
import io.micrometer.core.instrument.Counter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Dual-stack pods in in-pod mode, for real (root): pods a, b and d have an IPv4 and an IPv6 (ULA)
 * address on their veth and the redirection rules of both families (iptables-restore and
 * ip6tables-restore); c is outside the mesh. b serves an unmodified dual-stack http.server. a
 * reaches b by its IPv6 address through HBONE ({@code [v6]:port} in the CONNECT) and by its IPv4
 * address; an AuthorizationPolicy with IPv6 (and mixed) ipBlocks lets a in and keeps d out.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class InpodDualStackTest {

    static final String A4 = "10.248.1.1";
    static final String A6 = "fd00:a8::1:1";
    static final String B4 = "10.248.1.2";
    static final String B6 = "fd00:a8::1:2";
    static final String C4 = "10.248.1.3";
    static final String C6 = "fd00:a8::1:3";
    static final String D4 = "10.248.1.4";
    static final String D6 = "fd00:a8::1:4";
    static final List<String> PODS = List.of("a", "b", "c", "d");

    static final String MESH = """
            workloads:
            - name: pod-a
              namespace: shop
              serviceAccount: client
              workloadIps: ["10.248.1.1", "fd00:a8::1:1"]
              node: node-a
              protocol: HBONE
            - name: pod-b
              namespace: shop
              serviceAccount: server
              workloadIps: ["10.248.1.2", "fd00:a8::1:2"]
              node: node-a
              protocol: HBONE
              services:
                shop/web.shop.svc.cluster.local: {80: 8080}
            - name: pod-d
              namespace: shop
              serviceAccount: other
              workloadIps: ["10.248.1.4", "fd00:a8::1:4"]
              node: node-a
              protocol: HBONE
            services:
            - name: web
              namespace: shop
              vips: ["10.96.0.30", "fd00:96::30"]
              ports: {80: 8080}
            """;

    /** Only a, by its IPv6 /128 and its IPv4 /32 (a mixed list); d's addresses are in neither. */
    static final String ALLOW_A_BY_ADDRESS = """
            policies:
            - name: allow-a-by-address
              namespace: shop
              action: Allow
              rules:
              - - sourceIps: ["fd00:a8::1:1/128", "10.248.1.1/32"]
            """;

    /** Deny by an IPv6 prefix that holds d's address only. */
    static final String DENY_D_BY_V6_PREFIX = """
            policies:
            - name: deny-d-by-prefix
              namespace: shop
              action: Deny
              rules:
              - - sourceIps: ["fd00:a8:0:0:0:0:1:4/127"]
            """;

    @TempDir
    static Path dir;
    static Path config;
    static String marker;
    static Process httpServer;
    static AgentSide agent;
    static ZtunnelNode node;

    @BeforeAll
    static void start() throws Exception {
        assumeTrue(PodNetwork.usable() && Files.isExecutable(Path.of("/usr/sbin/ip6tables-restore")),
                "needs root, iproute2, iptables-restore, ip6tables-restore and curl");
        PodNetwork.deleteAll(PODS);
        PodNetwork.createPods(Map.of("a", A4, "b", B4, "c", C4, "d", D4), List.of("a", "b", "d"));
        for (var pod : Map.of("a", A6, "b", B6, "c", C6, "d", D6).entrySet()) {
            PodNetwork.addIpv6(pod.getKey(), pod.getValue());
        }
        for (String pod : List.of("a", "b", "d")) {
            PodNetwork.installRedirection6(pod);
        }
        marker = "dual-stack-marker-" + UUID.randomUUID();
        httpServer = PodNetwork.serveMarker("b", dir, marker, "::");

        config = dir.resolve("mesh.yaml");
        Files.writeString(config, MESH);
        Path zds = dir.resolve("run/ztunnel.sock");
        agent = new AgentSide(zds);
        node = InpodNode.start(config, zds, dir.resolve("ca"), Map.of());
        agent.acceptZtunnel();
        assertEquals("", agent.add("uid-a", "shop", "pod-a", "client", PodNetwork.netnsPath("a")));
        assertEquals("", agent.add("uid-b", "shop", "pod-b", "server", PodNetwork.netnsPath("b")));
        assertEquals("", agent.add("uid-d", "shop", "pod-d", "other", PodNetwork.netnsPath("d")));
        assertEquals("", agent.snapshotSent());
        PodNetwork.await(() -> node.certificates().status().size() >= 3
                && node.certificates().status().stream().allMatch(s -> "valid".equals(s.state())),
                "certificates for the enrolled pods");
    }

    @AfterAll
    static void stop() {
        InpodNode.stopAll(node, agent, httpServer, PODS);
    }

    @Test
    @Order(10)
    void theEnrolledPodsAddressesOfBothFamiliesAreReadInTheirNamespaces() {
        InpodWorkload b = node.inpod().orElseThrow().enrolled().stream().filter(p -> p.uid().equals("uid-b"))
                .findFirst().orElseThrow();
        assertEquals(List.of(B4, B6), b.addresses().stream().map(Addresses::format).sorted().toList());
    }

    @Test
    @Order(20)
    void aReachesBOverIpv6ThroughHbone() throws Exception {
        PodNetwork.Result r;
        List<WireCapture.Segment> wire;
        try (WireCapture capture = new WireCapture("zv-a", dir.resolve("a6.pcap"))) {
            r = PodNetwork.curl("a", "http://[" + B6 + "]:8080/marker.txt");
            wire = capture.stop();
        }
        assertTrue(r.ok(), "curl from pod a to b's IPv6 address: " + r);
        assertEquals(marker, r.output().trim());
        // On a's veth: only a's IPv6 address talking TLS with b's 15008 over IPv6, the page never in the clear.
        WireCapture.assertOnlyTlsTo15008(wire, A6, B6, marker, "");
        Counter mtls = node.registry().find("istio_tcp_connections_opened").tag("reporter", "destination")
                .tag("source_workload", "pod-a").tag("destination_workload", "pod-b")
                .tag("connection_security_policy", "mutual_tls").counter();
        assertTrue(mtls != null && mtls.count() >= 1, "b's ztunnel accepted a's tunnel");
    }

    @Test
    @Order(30)
    void aStillReachesBOverIpv4() throws Exception {
        PodNetwork.Result r = PodNetwork.curl("a", "http://" + B4 + ":8080/marker.txt");
        assertTrue(r.ok() && r.output().contains(marker), "curl from pod a to b's IPv4 address: " + r);
    }

    @Test
    @Order(40)
    void anIpBlockPolicyWithIpv6AllowsOneClientAndDeniesAnother() throws Exception {
        try {
            rewriteMesh(MESH + ALLOW_A_BY_ADDRESS);
            for (String to : List.of("[" + B6 + "]", B4)) {
                PodNetwork.Result a = PodNetwork.curl("a", "http://" + to + ":8080/marker.txt");
                assertTrue(a.ok() && a.output().contains(marker), "a is in the ALLOW's ipBlocks, to " + to + ": " + a);
                PodNetwork.Result d = PodNetwork.curl("d", "http://" + to + ":8080/marker.txt");
                assertFalse(d.ok() || d.output().contains(marker), "d is not in the ALLOW's ipBlocks, to " + to + ": " + d);
            }
            rewriteMesh(MESH + DENY_D_BY_V6_PREFIX);
            PodNetwork.Result d6 = PodNetwork.curl("d", "http://[" + B6 + "]:8080/marker.txt");
            assertFalse(d6.ok() || d6.output().contains(marker), "d's IPv6 address is in the DENY's prefix: " + d6);
            PodNetwork.Result d4 = PodNetwork.curl("d", "http://" + B4 + ":8080/marker.txt");
            assertTrue(d4.ok() && d4.output().contains(marker), "an IPv6 prefix never matches IPv4: " + d4);
            PodNetwork.Result a6 = PodNetwork.curl("a", "http://[" + B6 + "]:8080/marker.txt");
            assertTrue(a6.ok() && a6.output().contains(marker), "a is outside the DENY's prefix: " + a6);
        } finally {
            rewriteMesh(MESH);
        }
        PodNetwork.Result d = PodNetwork.curl("d", "http://[" + B6 + "]:8080/marker.txt");
        assertTrue(d.ok() && d.output().contains(marker), "without the policy d gets through again: " + d);
    }

    @Test
    @Order(50)
    void aPodOutsideTheMeshReachesBOnBothFamiliesThrough15006() throws Exception {
        for (String to : List.of("[" + B6 + "]", B4)) {
            PodNetwork.Result r = PodNetwork.curl("c", "http://" + to + ":8080/marker.txt");
            assertTrue(r.ok() && r.output().contains(marker), "plaintext from c to " + to + ": " + r);
        }
        Counter none = node.registry().find("istio_tcp_connections_opened").tag("reporter", "destination")
                .tag("destination_workload", "pod-b")
                .tag("connection_security_policy", "none").counter();
        assertTrue(none != null && none.count() >= 2, "b's 15006 counted both plaintext connections");
    }

    @Test
    @Order(60)
    void theListenersAreDualStackSocketsAndTheConfigDumpSaysSo() throws Exception {
        String ss = PodNetwork.run("ip netns exec zpod-b ss -Hltn");
        for (int port : List.of(15001, 15006, 15008)) {
            assertTrue(ss.contains("[::]:" + port) || ss.contains("*:" + port), "one socket on :: for " + port + ":\n" + ss);
        }
        JsonNode b = null;
        for (JsonNode w : AdminServer.configDump(node).get("inpod").get("workloads")) {
            b = w.get("uid").asText().equals("uid-b") ? w : b;
        }
        assertEquals("[\"10.248.1.2\",\"fd00:a8::1:2\"]", b.get("addresses").toString());
        String listeners = b.get("listeners").toString();
        for (String l : List.of("[::]:15008", "[::]:15001", "[::]:15006", "127.0.0.1:15053", "[::1]:15053")) {
            assertTrue(listeners.contains("\"" + l + "\""), l + " in " + listeners);
        }
    }

    @Test
    @Order(70)
    void aServiceWithAnIpv6VipIsReachedAndResolvedOverIpv6() throws Exception {
        PodNetwork.Result r = PodNetwork.curl("a", "http://[fd00:96::30]/marker.txt");
        assertTrue(r.ok() && r.output().contains(marker), "curl from a to the service's IPv6 VIP: " + r);
        // The pod's DNS over IPv6 (any server address: ip6tables REDIRECTs port 53 to [::1]:15053).
        Dig aaaa = Dig.run("zpod-a", BRIDGE_V6_SERVER, 53, "AAAA", "web.shop.svc.cluster.local");
        assertEquals("NOERROR", aaaa.status(), aaaa.output());
        assertEquals(List.of("fd00:96::30"), aaaa.data(), aaaa.output());
        Dig a = Dig.run("zpod-a", BRIDGE_V6_SERVER, 53, "A", "web.shop.svc.cluster.local");
        assertEquals(List.of("10.96.0.30"), a.data(), a.output());
    }

    /** Nobody serves DNS there: only the redirection to the pod's ztunnel can answer. */
    static final String BRIDGE_V6_SERVER = PodNetwork.BRIDGE_V6;

    static void rewriteMesh(String yaml) throws Exception {
        InpodNode.rewriteMesh(node, config, yaml);
    }
}
