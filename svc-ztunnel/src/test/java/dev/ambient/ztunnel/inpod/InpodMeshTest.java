package dev.ambient.ztunnel.inpod;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static dev.ambient.ztunnel.inpod.PodNetwork.await;
import static dev.ambient.ztunnel.inpod.PodNetwork.ports;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ambient.net.NetworkNamespace;
import dev.ambient.identity.CertificateAuthority;
import dev.ambient.ztunnel.LogCapture;
import dev.ambient.ztunnel.ZtunnelNode;
import dev.ambient.ztunnel.mesh.HboneClientScript;
import dev.ambient.ztunnel.admin.AdminServer;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
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
 * In-pod mode for real (root): three pod network namespaces on a bridge; pods a and b are
 * enrolled over ZDS (the test plays the node agent on the real transport and installs the
 * redirection rules inside their namespaces), pod c is outside the mesh. Unmodified programs run
 * inside the pods: python's http.server in b, curl in a and c, talking by pod IP. The ztunnel is
 * a {@link ZtunnelNode} in this JVM, in the host namespace, listening inside a and b.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class InpodMeshTest {

    static final String IP_A = "10.248.1.1";
    static final String IP_B = "10.248.1.2";
    static final String IP_C = "10.248.1.3";
    static final String UID_A = "6f1c0a2e-aaaa-4b1e-9c1d-0000000000a1";
    static final String UID_B = "6f1c0a2e-bbbb-4b1e-9c1d-0000000000b2";
    static final List<String> PODS = List.of("a", "b", "c", "d", "e");

    static final String MESH = """
            workloads:
            - name: pod-a
              namespace: shop
              serviceAccount: client
              workloadIps: [10.248.1.1]
              node: node-a
              protocol: HBONE
            - name: pod-b
              namespace: shop
              serviceAccount: server
              workloadIps: [10.248.1.2]
              node: node-a
              protocol: HBONE
            """;

    static final String DENY_CLIENT = """
            policies:
            - name: deny-client
              namespace: shop
              action: Deny
              rules:
              - - principals: [cluster.local/ns/shop/sa/client]
            """;

    static final String STRICT = """
            peerAuthentications:
            - name: strict
              namespace: shop
              mode: STRICT
            """;

    @TempDir
    static Path dir;
    static Path config;
    static Path zdsPath;
    static String marker;
    static Process httpServer;
    static AgentSide agent;
    static ZtunnelNode node;

    @BeforeAll
    static void start() throws Exception {
        assumeTrue(PodNetwork.usable(), "needs root, iproute2, iptables-restore and curl");
        PodNetwork.deleteAll(PODS);
        PodNetwork.createPods(Map.of("a", IP_A, "b", IP_B, "c", IP_C), List.of("a", "b"));
        marker = "inpod-marker-" + UUID.randomUUID();
        httpServer = PodNetwork.serveMarker("b", dir, marker);

        config = dir.resolve("mesh.yaml");
        Files.writeString(config, MESH);
        zdsPath = dir.resolve("run/ztunnel.sock");
        agent = new AgentSide(zdsPath);
        node = startNode();
        agent.acceptZtunnel();
        assertEquals("", agent.add(UID_A, "shop", "pod-a", "client", PodNetwork.netnsPath("a")));
        assertEquals("", agent.add(UID_B, "shop", "pod-b", "server", PodNetwork.netnsPath("b")));
        assertEquals("", agent.snapshotSent());
        awaitCertificates(node);
    }

    static ZtunnelNode startNode() throws Exception {
        return InpodNode.start(config, zdsPath, dir.resolve("ca"), Map.of());
    }

    static void awaitCertificates(ZtunnelNode n) throws Exception {
        InpodNode.awaitCertificates(n);
    }

    @AfterAll
    static void stop() {
        InpodNode.stopAll(node, agent, httpServer, PODS);
    }

    @Test
    @Order(10)
    void podToPodTrafficIsCapturedTunnelledAndArrives() throws Exception {
        // Only pod a and b's listeners, inside their own namespaces; nothing in pod c.
        assertTrue(ports("a").containsAll(List.of(15001, 15006, 15008, 15053)), "pod a: " + ports("a"));
        assertTrue(ports("b").containsAll(List.of(15001, 15006, 15008, 8080)), "pod b: " + ports("b"));
        assertEquals(List.of(), ports("c"));

        PodNetwork.Result r;
        List<WireCapture.Segment> wire;
        try (WireCapture capture = new WireCapture("zv-a", dir.resolve("a.pcap"))) {
            r = PodNetwork.curl("a", "http://" + IP_B + ":8080/marker.txt");
            wire = capture.stop();
        }
        assertTrue(r.ok(), "curl from pod a: " + r);
        assertEquals(marker, r.output().trim());

        // On pod a's veth: only TCP between a and b's 15008, each direction opening with a TLS
        // handshake record, and the page never in the clear.
        WireCapture.assertOnlyTlsTo15008(wire, IP_A, IP_B, marker, wire.isEmpty()
                ? PodNetwork.run("tcpdump -r " + dir.resolve("a.pcap") + " -nn 2>&1 | head -20; echo host:; ss -tn; "
                        + "echo pod-a:; ip netns exec zpod-a ss -tn; echo pod-b:; ip netns exec zpod-b ss -tn") : "");

        Counter mtls = node.registry().find("istio_tcp_connections_opened").tag("reporter", "source")
                .tag("source_workload", "pod-a").tag("destination_workload", "pod-b")
                .tag("connection_security_policy", "mutual_tls").counter();
        assertTrue(mtls != null && mtls.count() >= 1, "the ztunnel tunnelled a's connection to b");
    }

    @Test
    @Order(20)
    void anL4DenyPolicyBlocks() throws Exception {
        try {
            rewriteMesh(MESH + DENY_CLIENT);
            PodNetwork.Result denied = PodNetwork.curl("a", "http://" + IP_B + ":8080/marker.txt");
            assertFalse(denied.ok(), "DENY on principal shop/client must block: " + denied);
            assertFalse(denied.output().contains(marker));
        } finally {
            rewriteMesh(MESH);
        }
        PodNetwork.Result allowed = PodNetwork.curl("a", "http://" + IP_B + ":8080/marker.txt");
        assertTrue(allowed.ok() && allowed.output().contains(marker), "allowed again: " + allowed);
    }

    @Test
    @Order(30)
    void aPodOutsideTheMeshReachesAMeshPodThrough15006UnlessStrict() throws Exception {
        PodNetwork.Result plain = PodNetwork.curl("c", "http://" + IP_B + ":8080/marker.txt");
        assertTrue(plain.ok() && plain.output().contains(marker), "plaintext from c: " + plain);
        Counter none = node.registry().find("istio_tcp_connections_opened").tag("reporter", "destination")
                .tag("destination_workload", "pod-b").tag("connection_security_policy", "none").counter();
        assertTrue(none != null && none.count() >= 1, "b's 15006 counted the plaintext connection");
        try {
            rewriteMesh(MESH + STRICT);
            PodNetwork.Result strict = PodNetwork.curl("c", "http://" + IP_B + ":8080/marker.txt");
            assertFalse(strict.ok(), "STRICT refuses plaintext: " + strict);
            // Mesh traffic still flows under STRICT.
            PodNetwork.Result mesh = PodNetwork.curl("a", "http://" + IP_B + ":8080/marker.txt");
            assertTrue(mesh.ok() && mesh.output().contains(marker), "mTLS under STRICT: " + mesh);
        } finally {
            rewriteMesh(MESH);
        }
    }

    /**
     * The application sees the real client, as it would without the mesh: pod a's address for HBONE
     * (the tunnel's outer source: in-pod, a's connection leaves from a's own namespace), pod c's for
     * plaintext from outside the mesh; the access log and metrics say the same. Before, every
     * connection reached the application from b's own address (10.248.1.2).
     */
    @Test
    @Order(35)
    void theApplicationSeesTheClientsPodAddress() throws Exception {
        Path appLog = dir.resolve("peer-address.log");
        Process app = PodNetwork.servePeerAddress("b", 8081, appLog);
        try (LogCapture log = LogCapture.accessLog()) {
            assertSeenFrom("a", IP_A, "hbone", log);
            assertSeenFrom("c", IP_C, "plaintext", log);
            await(() -> appLines(appLog).equals(List.of("peer " + IP_A, "peer " + IP_C)), "the application's log: "
                    + appLines(appLog));
        } finally {
            app.destroyForcibly();
        }
        Counter fromA = node.registry().find("istio_tcp_connections_opened").tag("reporter", "destination")
                .tag("source_workload", "pod-a").tag("destination_workload", "pod-b").counter();
        assertTrue(fromA != null && fromA.count() >= 1, "b's side counted a as the source");
        assertEquals(0.0, sourceFallbacks(), "no connection fell back to the pod's address");
    }

    /**
     * A mesh peer (a valid certificate, on another node: its connection comes from the bridge's
     * 10.248.0.1) that claims another client in {@code Forwarded} and names b in a crafted CONNECT
     * does not choose the address the application sees: it sees the connection's source. Before,
     * it saw b's own address; a claim believed would have shown 10.248.1.77.
     */
    @Test
    @Order(36)
    void aMeshPeersForwardedClaimDoesNotChooseTheAddressTheApplicationSees() throws Exception {
        assumeTrue(HboneClientScript.available(), "/usr/bin/python3 cannot import h2");
        Path appLog = dir.resolve("peer-address-hostile.log");
        Process app = PodNetwork.servePeerAddress("b", 8081, appLog);
        try {
            CertificateAuthority ca = CertificateAuthority.loadOrCreate(dir.resolve("ca"), "cluster.local",
                    Duration.ofDays(3650));
            HboneClientScript script = new HboneClientScript(dir,
                    dir.resolve("ca").resolve(CertificateAuthority.ROOT_CERT_FILE));
            HboneClientScript.Identity peer = script.identity(ca, "shop", "client", "hostile-peer");
            for (String claim : List.of("for=10.248.1.77", "for=\"10.248.1.77:4000\"", "for=" + IP_B,
                    "for=127.0.0.1")) {
                HboneClientScript.Run r = script.connect(peer, IP_B + ":15008", IP_B + ":8081", 16, "--forwarded",
                        claim);
                assertEquals(200, r.status(), claim + ": " + r);
            }
            await(() -> appLines(appLog).size() == 4, "four connections at the application: " + appLines(appLog));
            assertEquals(List.of("peer 10.248.0.1", "peer 10.248.0.1", "peer 10.248.0.1", "peer 10.248.0.1"),
                    appLines(appLog), "the application saw the connection's source, never the claim");
            // A good client still gets through, from its own address.
            PodNetwork.Result good = PodNetwork.curl("a", "http://" + IP_B + ":8081/");
            assertEquals(IP_A, good.output().trim(), good.toString());
        } finally {
            app.destroyForcibly();
        }
    }

    /**
     * A ztunnel that may not set IP_TRANSPARENT (its socket threads lack CAP_NET_ADMIN, as a
     * DaemonSet without NET_ADMIN would) still delivers the connection, from the pod's own address,
     * and says so: a warning and {@code ztunnel_inbound_source_fallbacks_total{reason="ip_transparent"}}.
     * With the capability back, the client's address again.
     */
    @Test
    @Order(37)
    void withoutTheCapabilityTheConnectionStillArrivesFromThePodsAddressCountedAndLogged() throws Exception {
        Path appLog = dir.resolve("peer-address-fallback.log");
        Process app = PodNetwork.servePeerAddress("b", 8081, appLog);
        try {
            onEverySocketThread(() -> ThreadCapabilities.netAdmin(false));
            try (LogCapture warnings = new LogCapture("dev.ambient.ztunnel.inbound.SourceFallbacks")) {
                PodNetwork.Result r = PodNetwork.curl("a", "http://" + IP_B + ":8081/");
                assertEquals(IP_B, r.output().trim(), "delivered, from b's own address: " + r);
                String line = warnings.await("the fallback's warning", l -> l.contains("client's address " + IP_A));
                assertTrue(line.contains("pod's own address"), line);
            } finally {
                onEverySocketThread(() -> ThreadCapabilities.netAdmin(true));
            }
            assertEquals(1.0, node.registry().find("ztunnel_inbound_source_fallbacks").tag("reason", "ip_transparent")
                    .counter().count());
            PodNetwork.Result again = PodNetwork.curl("a", "http://" + IP_B + ":8081/");
            assertEquals(IP_A, again.output().trim(), again.toString());
        } finally {
            app.destroyForcibly();
        }
    }

    /**
     * A ztunnel newer than the node agent (upgraded first): the old agent installs no reply routing in
     * its pods and its Add does not say {@code reply_routing}. The application then sees the pod's own
     * address and the connection works, with one info line for the pod and no fallback counted; a
     * Keep leaves it so. Before, the ztunnel bound the client's address anyway, the application's
     * reply left through eth0 and every connection timed out. Once an upgraded agent's Add of the same
 * sandbox says it installs reply routing: the client's address.
     */
    @Test
    @Order(42) // after the config dump's count of Adds
    void anAddFromAnAgentWithoutReplyRoutingGetsThePodsOwnAddressAndWorks() throws Exception {
        Path appLog = dir.resolve("peer-address-old-agent.log");
        Process app = PodNetwork.servePeerAddress("b", 8081, appLog);
        double fallbacksBefore = sourceFallbacks();
        boolean routingRemoved = false;
        try {
            // As an old agent leaves pod b: its capture rules, no reply routing.
            assertEquals("", agent.del(UID_B));
            PodNetwork.sh("ip netns exec zpod-b sh -c 'ip rule del fwmark 0x111/0xfff lookup 100 pref 32764;"
                    + " ip route del local 0.0.0.0/0 dev lo table 100'");
            routingRemoved = true;
            try (LogCapture info = new LogCapture("dev.ambient.ztunnel.inpod.InpodWorkloads")) {
                assertEquals("", agent.addFromOldAgent(UID_B, "shop", "pod-b", "server", PodNetwork.netnsPath("b")));
                PodNetwork.Result r = PodNetwork.curl("a", "http://" + IP_B + ":8081/");
                assertEquals(IP_B, r.output().trim(), "delivered, from b's own address: " + r);
                String line = info.await("the pod's line", l -> l.contains("pod-b") && l.contains("reply routing"));
                assertTrue(line.contains("own address"), line);
            }
            assertFalse(podDump(UID_B).get("replyRouting").asBoolean(), "the config dump says so too");
            assertEquals("", agent.keep(UID_B));
            PodNetwork.Result kept = PodNetwork.curl("a", "http://" + IP_B + ":8081/");
            assertEquals(IP_B, kept.output().trim(), "Keep keeps the pod's own address: " + kept);
            assertEquals(fallbacksBefore, sourceFallbacks(), "not a fallback: nothing failed");

            // The agent is upgraded: it installs the reply routing and its Add (of the same sandbox) says so.
            PodNetwork.sh("ip netns exec zpod-b sh -c '" + PodNetwork.REPLY_ROUTING + "'");
            routingRemoved = false;
            assertEquals("", agent.add(UID_B, "shop", "pod-b", "server", PodNetwork.netnsPath("b")));
            PodNetwork.Result again = PodNetwork.curl("a", "http://" + IP_B + ":8081/");
            assertEquals(IP_A, again.output().trim(), "the client's address again: " + again);
            assertTrue(podDump(UID_B).get("replyRouting").asBoolean());
        } finally {
            app.destroyForcibly();
            if (routingRemoved) { // leave b as the later tests expect it
                PodNetwork.sh("ip netns exec zpod-b sh -c '" + PodNetwork.REPLY_ROUTING + "'");
                agent.del(UID_B);
                agent.add(UID_B, "shop", "pod-b", "server", PodNetwork.netnsPath("b"));
            }
            await(() -> node.inpod().orElseThrow().drainingNow().isEmpty(), "b's earlier sandboxes drained");
        }
    }

    /** Runs {@code action} once on each of the node's socket threads (each holds one until all are reached). */
    static void onEverySocketThread(Runnable action) throws Exception {
        SocketThreads threads = node.inpod().orElseThrow().socketThreads();
        int n = 2; // InpodNode's default ztunnel.inpod.socket-threads
        java.util.concurrent.CyclicBarrier all = new java.util.concurrent.CyclicBarrier(n);
        List<java.util.concurrent.CompletableFuture<Object>> done = new java.util.ArrayList<>();
        try (NetworkNamespace b = NetworkNamespace.open(PodNetwork.netnsPath("b"))) {
            for (int i = 0; i < n; i++) {
                done.add(threads.create(b, () -> {
                    all.await(10, TimeUnit.SECONDS);
                    action.run();
                    return null;
                }));
            }
            for (var f : done) {
                f.get(15, TimeUnit.SECONDS);
            }
        }
    }

    /** curl from {@code pod} to b's peer-address application: it and b's access-log line name {@code ip}. */
    static void assertSeenFrom(String pod, String ip, String via, LogCapture log) throws Exception {
        PodNetwork.Result r = PodNetwork.curl(pod, "http://" + IP_B + ":8081/");
        assertTrue(r.ok(), "curl from pod " + pod + ": " + r);
        assertEquals(ip, r.output().trim(), "through " + via + " the application saw pod " + pod + "'s address");
        String line = log.await("b's inbound " + via + " line", l -> l.startsWith("inbound ")
                && l.contains("dst=" + IP_B + ":8081") && l.contains("via=" + via));
        assertTrue(line.contains("src=" + ip + ":"), line);
    }

    static List<String> appLines(Path log) {
        try {
            return Files.readAllLines(log).stream().filter(l -> l.startsWith("peer ")).toList();
        } catch (java.io.IOException e) {
            return List.of();
        }
    }

    /** The running pod's entry in the config dump's inpod section. */
    static JsonNode podDump(String uid) {
        for (JsonNode p : AdminServer.configDump(node).get("inpod").get("workloads")) {
            if (p.get("uid").asText().equals(uid) && p.get("state").asText().equals("RUNNING")) {
                return p;
            }
        }
        throw new AssertionError("no running pod " + uid + " in the config dump");
    }

    static double sourceFallbacks() {
        return node.registry().find("ztunnel_inbound_source_fallbacks").counters().stream()
                .mapToDouble(Counter::count).sum();
    }

    @Test
    @Order(40)
    void configDumpAndMetricsShowTheEnrolledPods() throws Exception {
        JsonNode dump = AdminServer.configDump(node).get("inpod");
        assertNotNull(dump, "config dump has an inpod section");
        assertTrue(dump.get("connected").asBoolean());
        assertTrue(dump.get("snapshotReceived").asBoolean());
        Map<String, JsonNode> byUid = new HashMap<>();
        dump.get("workloads").forEach(w -> byUid.put(w.get("uid").asText(), w));
        assertEquals(2, byUid.size(), dump.toString());
        JsonNode b = byUid.get(UID_B);
        assertEquals("pod-b", b.get("name").asText());
        assertEquals("shop", b.get("namespace").asText());
        assertEquals("RUNNING", b.get("state").asText());
        assertEquals("spiffe://cluster.local/ns/shop/sa/server", b.get("identity").asText());
        assertEquals(IP_B, b.get("addresses").get(0).asText());
        long inode = (Long) Files.getAttribute(PodNetwork.netnsPath("b"), "unix:ino");
        assertEquals("net:[" + inode + "]", b.get("netns").asText());
        // 15008, 15001, 15006 (dual-stack), DNS over UDP and TCP on 127.0.0.1 and on ::1 (the pod's lo has it)
        assertEquals(7, b.get("listeners").size(), b.toString());
        assertTrue(b.get("listeners").toString().contains("[::]:15008"), b.toString());
        assertTrue(b.get("listeners").toString().contains("127.0.0.1:15053"));
        assertTrue(b.get("listeners").toString().contains("[::1]:15053"));

        Gauge enrolled = node.registry().find("ztunnel_inpod_workloads").gauge();
        assertEquals(2.0, enrolled.value());
        Counter adds = node.registry().find("ztunnel_zds_requests_total").tag("type", "add").tag("result", "ok")
                .counter();
        assertEquals(2.0, adds.count());
        // No shared-mode HBONE listener in the host namespace for pods served in-pod.
        assertEquals(List.of(), node.inbound().listening());
    }

    @Test
    @Order(45)
    void perConnectionLatencyThroughTheInPodZtunnel() throws Exception {
        // The same unmodified server in pod c (outside the mesh) as the baseline, reached from the
        // host namespace without any capture; the mesh path is a's client to b through both
        // in-pod ztunnel ends (15001 -> pooled HBONE -> 15008 -> b's app).
        Process direct = PodNetwork.start("c", "/usr/bin/python3", "-m", "http.server", "8080", "--bind", "0.0.0.0",
                "--directory", dir.resolve("www").toString());
        try {
            await(() -> ports("c").contains(8080), "http.server in pod c");
            long[] baseline = requests(null, IP_C, 150);
            long[] mesh;
            try (NetworkNamespace a = NetworkNamespace.open(PodNetwork.netnsPath("a"))) {
                mesh = requests(a, IP_B, 150);
            }
            long[] plaintextIn;
            try (NetworkNamespace c = NetworkNamespace.open(PodNetwork.netnsPath("c"))) {
                plaintextIn = requests(c, IP_B, 100);
            }
            long[] passthroughOut;
            try (NetworkNamespace a = NetworkNamespace.open(PodNetwork.netnsPath("a"))) {
                passthroughOut = requests(a, IP_C, 100);
            }
            System.out.printf("HTTP/1.0 GET, new TCP connection each, p50/p90 ms: direct host->c %.2f/%.2f;"
                    + " a->b through both in-pod ends (15001, HBONE, 15008) %.2f/%.2f; c->b through b's 15006 %.2f/%.2f;"
                    + " a->c through a's 15001 passthrough %.2f/%.2f%n", ms(baseline, 50), ms(baseline, 90),
                    ms(mesh, 50), ms(mesh, 90), ms(plaintextIn, 50), ms(plaintextIn, 90), ms(passthroughOut, 50),
                    ms(passthroughOut, 90));
            assertTrue(ms(mesh, 50) < 50, "mesh p50 under 50 ms on this machine");
        } finally {
            direct.destroyForcibly();
        }
    }

    /** Sequential requests, each on a new connection from a socket created in {@code from} (null: host). */
    static long[] requests(NetworkNamespace from, String ip, int n) throws Exception {
        long[] took = new long[n];
        for (int i = 0; i < n; i++) {
            long t0 = System.nanoTime();
            String body = PodClient.httpGet(from, ip, 8080, "/marker.txt");
            took[i] = System.nanoTime() - t0;
            if (!body.contains(marker)) {
                throw new AssertionError("request " + i + " to " + ip + " got: " + body);
            }
        }
        java.util.Arrays.sort(took);
        return took;
    }

    static double ms(long[] sorted, int percentile) {
        return sorted[Math.min(sorted.length - 1, sorted.length * percentile / 100)] / 1e6;
    }

    @Test
    @Order(50)
    void badAddsAreRefusedInTheAckAndOtherPodsAreUnaffected() throws Exception {
        String notNetns = agent.addWithFile("uid-bad", "bad", Path.of("/etc/hostname"));
        assertTrue(notNetns.contains("not a network namespace"), notNetns);
        String noFd = agent.addWithoutFd("uid-nofd");
        assertTrue(noFd.contains("no network namespace fd"), noFd);
        String unknownKeep = agent.keep("uid-never-added");
        assertTrue(unknownKeep.contains("unknown workload uid"), unknownKeep);
        Counter errors = node.registry().find("ztunnel_zds_requests_total").tag("type", "add")
                .tag("result", "error").counter();
        assertEquals(2.0, errors.count());
        PodNetwork.Result still = PodNetwork.curl("a", "http://" + IP_B + ":8080/marker.txt");
        assertTrue(still.ok() && still.output().contains(marker), "others unaffected: " + still);
    }

    @Test
    @Order(55)
    void anAddWithANewNamespaceForTheSameUidReplacesTheOldSandbox() throws Exception {
        // A pod whose sandbox is re-created keeps its uid but gets a new network namespace.
        PodNetwork.sh("ip netns add zpod-d && ip -n zpod-d link set lo up");
        PodNetwork.sh("ip netns add zpod-e && ip -n zpod-e link set lo up");
        assertEquals("", agent.add("uid-sandbox", "shop", "pod-d", "client", PodNetwork.netnsPath("d")));
        assertEquals(List.of(15001, 15006, 15008, 15053), ports("d"));
        assertEquals("", agent.add("uid-sandbox", "shop", "pod-d", "client", PodNetwork.netnsPath("e")));
        assertEquals(List.of(), ports("d"), "the old sandbox's listeners are closed");
        assertEquals(List.of(15001, 15006, 15008, 15053), ports("e"));
        assertEquals("", agent.del("uid-sandbox"));
        assertEquals(List.of(), ports("e"));
    }

    @Test
    @Order(60)
    void agentRestartKeepsPodsWithoutRecreatingThemAndDropsWhatItNoLongerNames() throws Exception {
        String listenerA = PodNetwork.listenerInode("a", 15008);
        assertNotNull(listenerA);
        agent.restart();
        agent.acceptZtunnel(); // the ztunnel reconnects by itself
        // The new agent still knows pod a (Add again, as after a restart: a no-op) but not pod b.
        assertEquals("", agent.add(UID_A, "shop", "pod-a", "client", PodNetwork.netnsPath("a")));
        assertEquals("", agent.snapshotSent());
        assertEquals(listenerA, PodNetwork.listenerInode("a", 15008), "pod a kept its listening socket");
        await(() -> !ports("b").contains(15008) && !ports("b").contains(15001) && !ports("b").contains(15006),
                "pod b, not in the snapshot, is dropped");
        PodNetwork.Result dropped = PodNetwork.curl("a", "http://" + IP_B + ":8080/marker.txt");
        assertFalse(dropped.ok() && dropped.output().contains(marker),
                "b's rules redirect to a 15006 that no longer listens: " + dropped);

        // The pod comes back with a Keep-less Add (the agent found it again).
        assertEquals("", agent.add(UID_B, "shop", "pod-b", "server", PodNetwork.netnsPath("b")));
        PodNetwork.Result back = PodNetwork.curl("a", "http://" + IP_B + ":8080/marker.txt");
        assertTrue(back.ok() && back.output().contains(marker), "b re-enrolled: " + back);
        assertEquals("", agent.keep(UID_A));
    }

    @Test
    @Order(70)
    void ztunnelRestartRecoversEnrolmentFromTheReplayedSnapshot() throws Exception {
        node.close();
        await(() -> ports("a").equals(List.of()), "a stopped ztunnel leaves nothing listening in pod a");
        assertEquals(List.of(8080), ports("b"));
        node = startNode();
        agent.restart(); // the agent sees its connection break and serves the new ztunnel
        agent.acceptZtunnel();
        assertEquals("", agent.add(UID_A, "shop", "pod-a", "client", PodNetwork.netnsPath("a")));
        assertEquals("", agent.add(UID_B, "shop", "pod-b", "server", PodNetwork.netnsPath("b")));
        assertEquals("", agent.snapshotSent());
        awaitCertificates(node);
        PodNetwork.Result r = PodNetwork.curl("a", "http://" + IP_B + ":8080/marker.txt");
        assertTrue(r.ok() && r.output().contains(marker), "after a ztunnel restart: " + r);
    }

    @Test
    @Order(80)
    void delRemovesThePodsListenersSocketsAndNamespaceFd() throws Exception {
        assertTrue(PodNetwork.curl("a", "http://" + IP_B + ":8080/marker.txt").ok());
        long inodeB = (Long) Files.getAttribute(PodNetwork.netnsPath("b"), "unix:ino");
        assertTrue(fdsOn(inodeB) >= 1, "the ztunnel holds b's namespace");
        // An open tunnelled connection keeps b draining (until drain-timeout) after the Del.
        Process idleClient = PodNetwork.start("a", "python3", "-c",
                "import socket,time; s=socket.create_connection(('" + IP_B + "', 8080)); time.sleep(30)");
        // Two connections to b's 15008 still in their TLS handshake: one silent, one mid-ClientHello.
        try (Socket silent = new Socket(); Socket partial = new Socket()) {
            await(() -> established("b").stream().anyMatch(l -> l.contains(":8080")),
                    "a's idle connection reaches b's application through the tunnel");
            silent.connect(new InetSocketAddress(IP_B, 15008), 2000);
            partial.connect(new InetSocketAddress(IP_B, 15008), 2000);
            partial.getOutputStream().write(new byte[] {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01});
            partial.getOutputStream().flush();
            for (Socket s : List.of(silent, partial)) {
                await(() -> established("b").stream().anyMatch(l -> l.contains(":" + s.getLocalPort())),
                        "the handshaking connection accepted in b");
            }
            long t0 = System.nanoTime();
            assertEquals("", agent.del(UID_B));
            // They carry no stream, and must never finish a handshake for a pod that is gone: closed now,
            // not when the drain ends (drain-timeout is 2 s here).
            for (Socket s : List.of(silent, partial)) {
                s.setSoTimeout(1000);
                assertTrue(closedByPeer(s), "a handshaking connection is closed at the Del");
            }
            long ms = (System.nanoTime() - t0) / 1_000_000;
            System.out.printf("handshaking connections closed %d ms after the Del%n", ms);
            assertTrue(ms < 1000, "closed well before the drain timeout: " + ms + " ms");
        } finally {
            idleClient.destroyForcibly();
        }
        assertEquals(List.of(8080), ports("b"), "only the application still listens in b");
        await(() -> fdsOn(inodeB) == 0, "b's namespace fd released after the drain");
        await(() -> established("b").isEmpty(), "no ztunnel connection left in b");
        assertEquals(1.0, node.registry().find("ztunnel_inpod_workloads").gauge().value());
        // A del of what is gone is answered, not an error.
        assertEquals("", agent.del(UID_B));
    }

    @Test
    @Order(90)
    void socketCreationInsideAPodCostsMicroseconds() throws Exception {
        try (SocketThreads threads = new SocketThreads(1, 16, new SimpleMeterRegistry());
                NetworkNamespace ns = NetworkNamespace.open(PodNetwork.netnsPath("a"))) {
            PodNamespace pod = new PodNamespace(ns, "pod a", threads);
            int n = 2000;
            for (int i = 0; i < 200; i++) {
                pod.create(io.netty.channel.epoll.EpollSocketChannel::new).get().unsafe().closeForcibly();
            }
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                pod.create(io.netty.channel.epoll.EpollSocketChannel::new).get().unsafe().closeForcibly();
            }
            long inPod = (System.nanoTime() - t0) / n;
            t0 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                SocketNamespace.HOST.create(io.netty.channel.epoll.EpollSocketChannel::new).get().unsafe()
                        .closeForcibly();
            }
            long host = (System.nanoTime() - t0) / n;
            System.out.printf("socket creation: %d us in a pod namespace (worker hand-off + 2 setns), %d us inline%n",
                    inPod / 1000, host / 1000);
            assertTrue(inPod < 2_000_000, "under 2 ms per socket: " + inPod + " ns");
            long inode = (Long) Files.getAttribute(PodNetwork.netnsPath("a"), "unix:ino");
            assertEquals(inode, pod.create(NetworkNamespace::currentInode).get(), "created inside pod a");
        }
    }

    /** True when the peer closed (EOF or reset); false when nothing came within the socket's timeout. */
    static boolean closedByPeer(Socket s) {
        try {
            byte[] buf = new byte[4096];
            while (true) {
                if (s.getInputStream().read(buf) < 0) {
                    return true;
                }
            }
        } catch (java.net.SocketTimeoutException e) {
            return false;
        } catch (java.io.IOException e) {
            return true; // reset
        }
    }

    static void rewriteMesh(String yaml) throws Exception {
        InpodNode.rewriteMesh(node, config, yaml);
    }

    static List<String> established(String pod) {
        try {
            return PodNetwork.established(pod);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** File descriptors of this JVM open on the namespace with this inode (however they were opened). */
    static long fdsOn(long inode) {
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(f -> {
                try {
                    String link = Files.readSymbolicLink(f).toString();
                    return (link.startsWith("net:[") || link.startsWith("/run/netns/"))
                            && inode == (Long) Files.getAttribute(f, "unix:ino");
                } catch (Exception e) {
                    return false;
                }
            }).count();
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

}
