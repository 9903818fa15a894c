package dev.ambient.ztunnel.inpod;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ambient.ztunnel.LogCapture;
import dev.ambient.ztunnel.ZtunnelNode;
import dev.ambient.ztunnel.dns.Dnsmasq;
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
 * The DNS proxy in-pod, for real (root): pod q is enrolled (the redirection rules, DNS capture
 * included, installed in its namespace; the test plays the node agent over ZDS) and resolves with
 * its own resolv.conf ({@code /etc/netns/zpod-q/resolv.conf}: nameserver 10.248.3.9, the cluster's
 * search path, ndots 5); pod r, outside the mesh, is "the world": Debian's dnsmasq as the resolver
 * and python's http.server. Unmodified programs in q (glibc's getent, python's resolver, dig, curl)
 * resolve a Kubernetes service by its short name, a ServiceEntry host to its auto-allocated
 * address, and an external name through the upstream; curl reaches the ServiceEntry by name while
 * the mesh runs REGISTRY_ONLY and refuses an unlisted address; known names keep resolving while the
 * resolver is down.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class InpodDnsTest {

    static final String IP_Q = "10.248.3.1";
    static final String IP_R = "10.248.3.9";
    static final List<String> PODS = List.of("q", "r");
    static final Path RESOLV_DIR = Path.of("/etc/netns/zpod-q");

    static final String MESH = """
            workloads:
            - name: pod-q
              namespace: default
              serviceAccount: sleep
              workloadIps: [10.248.3.1]
              node: node-a
              protocol: HBONE
            - name: api
              uid: Kubernetes/networking.istio.io/ServiceEntry/egress/api/web.outside.test
              namespace: egress
              hostname: web.outside.test
              services:
                egress/api.outside.test: {8080: 8080}
            services:
            - name: httpbin
              namespace: default
              vips: [10.96.0.20]
              ports: {80: 8080}
            - name: api
              namespace: egress
              hostname: api.outside.test
              vips: [240.240.7.7]
              ports: {8080: 8080}
              meshExternal: true
            """;

    @TempDir
    static Path dir;
    static String marker;
    static Process httpServer;
    static Dnsmasq resolver;
    static AgentSide agent;
    static ZtunnelNode node;
    static LogCapture access;

    @BeforeAll
    static void start() throws Exception {
        assumeTrue(PodNetwork.usable() && Files.isExecutable(Path.of("/usr/sbin/dnsmasq"))
                && Files.isExecutable(Path.of("/usr/bin/dig")), "needs root, iptables, curl, dnsmasq and dig");
        PodNetwork.createPods(Map.of("q", IP_Q, "r", IP_R), List.of("q"));
        Files.createDirectories(RESOLV_DIR);
        Files.writeString(RESOLV_DIR.resolve("resolv.conf"), "nameserver " + IP_R + "\n"
                + "search default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:2 attempts:2\n");
        marker = "egress-marker-" + UUID.randomUUID();
        httpServer = PodNetwork.serveMarker("r", dir, marker);
        resolver = Dnsmasq.start("zpod-r", IP_R, 53, "--local=/cluster.local/",
                "--address=/api.outside.test/203.0.113.99", "--host-record=web.outside.test," + IP_R,
                "--host-record=unlisted.outside.test," + IP_R);

        Path config = dir.resolve("mesh.yaml");
        Files.writeString(config, MESH);
        Path zds = dir.resolve("run/ztunnel.sock");
        agent = new AgentSide(zds);
        node = InpodNode.start(config, zds, dir.resolve("ca"), Map.of("ztunnel.dns.upstream", IP_R,
                "ztunnel.outbound-traffic-policy", "REGISTRY_ONLY"));
        agent.acceptZtunnel();
        assertEquals("", agent.add("uid-q", "default", "pod-q", "sleep", PodNetwork.netnsPath("q")));
        assertEquals("", agent.snapshotSent());
        PodNetwork.await(() -> node.certificates().status().stream().anyMatch(s -> "valid".equals(s.state())),
                "pod q's certificate");
        access = LogCapture.accessLog();
    }

    @AfterAll
    static void stop() throws Exception {
        if (access != null) {
            access.close();
        }
        if (resolver != null) {
            resolver.close();
        }
        InpodNode.stopAll(node, agent, httpServer, PODS);
        Files.deleteIfExists(RESOLV_DIR.resolve("resolv.conf"));
        Files.deleteIfExists(RESOLV_DIR);
    }

    static String inPodQ(String... command) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of("ip", "netns", "exec", "zpod-q"));
        cmd.addAll(List.of(command));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return "timed out: " + out;
        }
        return out.trim();
    }

    @Test
    @Order(10)
    void thePodsResolverFindsServicesServiceEntriesAndTheWorld() throws Exception {
        assertTrue(PodNetwork.ports("q").contains(15053), "the DNS proxy listens in q: " + PodNetwork.ports("q"));
        // A Kubernetes service by its short name, through glibc and the search path.
        assertEquals("10.96.0.20", inPodQ("getent", "ahostsv4", "httpbin").split("\\s+")[0]);
        // A ServiceEntry host: its (auto-allocated) address, not what the world's resolver says.
        assertEquals("240.240.7.7", inPodQ("getent", "ahostsv4", "api.outside.test").split("\\s+")[0]);
        // An external name: forwarded to q's resolver, from q's own address (the socket is born in q).
        assertEquals("198.51.100.20", inPodQ("/usr/bin/python3", "-c",
                "import socket; print(socket.gethostbyname('www.outside.test'))"));
        String log = resolver.log();
        assertTrue(log.contains("query[A] www.outside.test from " + IP_Q), log);
        assertFalse(log.contains("api.outside.test from"), "the mesh's names never reach the resolver: " + log);
        // dig asks the resolver directly, over TCP: captured all the same, answered by the mesh.
        String tcp = inPodQ("dig", "+tcp", "+short", "@" + IP_R, "api.outside.test");
        assertEquals("240.240.7.7", tcp);
        String udp = inPodQ("dig", "+short", "@" + IP_R, "web.outside.test");
        assertEquals(IP_R, udp, "forwarded, and the answer seems to come from the resolver asked");
        var requests = node.registry().find("istio_dns_requests").tags("source_workload", "pod-q").counter();
        assertTrue(requests != null && requests.count() >= 6, "istio_dns_requests_total for pod-q");
    }

    @Test
    @Order(20)
    void aServiceEntryIsReachedByItsNameAndAnUnlistedAddressIsRefused() throws Exception {
        PodNetwork.Result viaEntry = PodNetwork.curl("q", "http://api.outside.test:8080/marker.txt");
        assertTrue(viaEntry.ok() && viaEntry.output().contains(marker), viaEntry.output());
        access.await("the ServiceEntry connection, resolved by name",
                l -> l.contains("via=passthrough-dns") && l.contains("outcome=ok"));

        // REGISTRY_ONLY: the same server by its address, or by a name the mesh does not list.
        PodNetwork.Result direct = PodNetwork.curl("q", "http://" + IP_R + ":8080/marker.txt");
        assertFalse(direct.ok(), direct.output());
        String refusal = access.await("the refusal", l -> l.contains("dst=" + IP_R + ":8080")
                && l.contains("outcome=refused"));
        assertTrue(refusal.contains("not a known workload, service or ServiceEntry") && refusal.contains("REGISTRY_ONLY"),
                refusal);
        PodNetwork.Result unlisted = PodNetwork.curl("q", "http://unlisted.outside.test:8080/marker.txt");
        assertFalse(unlisted.ok(), unlisted.output());

        // The ServiceEntry still works afterwards.
        assertTrue(PodNetwork.curl("q", "http://api.outside.test:8080/marker.txt").output().contains(marker));
    }

    @Test
    @Order(30)
    void knownNamesKeepResolvingWhileTheResolverIsDown() throws Exception {
        resolver.close();
        resolver = null;
        long t0 = System.nanoTime();
        assertEquals("10.96.0.20", inPodQ("getent", "ahostsv4", "httpbin").split("\\s+")[0]);
        assertEquals("240.240.7.7", inPodQ("getent", "ahostsv4", "api.outside.test").split("\\s+")[0]);
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        System.out.printf("known names with the resolver down: both resolved in %d ms%n", millis);
        assertTrue(millis < 3000, "no waiting for the dead resolver: " + millis + " ms");
        String fresh = inPodQ("getent", "ahostsv4", "fresh.outside.test");
        assertTrue(fresh.isEmpty(), "an unknown name fails: " + fresh);
        var failures = node.registry().find("istio_dns_upstream_failures").counters();
        assertTrue(failures.stream().mapToDouble(c -> c.count()).sum() > 0, "upstream failures counted");
    }
}
