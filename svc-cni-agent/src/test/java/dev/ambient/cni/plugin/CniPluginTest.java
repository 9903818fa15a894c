package dev.ambient.cni.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ambient.cni.CniNode;
import dev.ambient.cni.TestNetworks;
import dev.ambient.cni.ZdsTestClient;
import dev.ambient.cni.pods.DirectoryPodSource;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CNI plugin run as the container runtime runs it (the launcher script, environment and
 * stdin), against a real agent reading pods from YAML, pods as real network namespaces, and a
 * ztunnel-side ZDS client.
 */
@Timeout(90)
class CniPluginTest {

    static final Path LAUNCHER = Path.of("target/ambient-cni").toAbsolutePath();
    static final String MESH_POD = "cnit-p1";
    static final String LEGACY_POD = "cnit-p2";
    static final String YAML = """
            apiVersion: v1
            kind: Namespace
            metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
            ---
            apiVersion: v1
            kind: Namespace
            metadata: {name: legacy}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: cart, namespace: shop, uid: uid-cart}
            spec: {nodeName: node-a, serviceAccountName: cart, containers: [{name: c, image: x}]}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: old, namespace: legacy, uid: uid-old}
            spec: {nodeName: node-a, containers: [{name: c, image: x}]}
            """;
    static final String PREV_RESULT = """
            {"cniVersion": "1.0.0",
             "interfaces": [{"name": "eth0", "mac": "0a:58:0a:f9:02:02", "sandbox": "/var/run/netns/x"}],
             "ips": [{"address": "10.249.2.2/24", "gateway": "10.249.2.1", "interface": 0}],
             "routes": [{"dst": "0.0.0.0/0"}], "dns": {}}""";

    static TestNetworks nets;
    static ObjectMapper json = new ObjectMapper();

    @TempDir
    static Path dir;

    @BeforeAll
    static void pods() throws Exception {
        nets = new TestNetworks();
        nets.add(MESH_POD);
        nets.add(LEGACY_POD);
        Files.createDirectories(dir.resolve("yaml"));
        Files.writeString(dir.resolve("yaml/pods.yaml"), YAML);
    }

    @AfterAll
    static void cleanUp() {
        nets.close();
    }

    record Run(int code, String out, String err) {
    }

    static Run plugin(String command, String netns, String namespace, String name, String uid, Path socket)
            throws Exception {
        String conf = "{\"cniVersion\":\"1.0.0\",\"name\":\"k8s-pod-network\",\"type\":\"ambient-cni\","
                + "\"agent_socket\":\"" + socket + "\",\"agent_timeout_seconds\":20,\"prevResult\":" + PREV_RESULT + "}";
        ProcessBuilder pb = new ProcessBuilder(LAUNCHER.toString());
        Map<String, String> env = pb.environment();
        env.put("CNI_COMMAND", command);
        env.put("CNI_CONTAINERID", "c0ffee" + name);
        env.put("CNI_NETNS", netns == null ? "" : TestNetworks.path(netns).toString());
        env.put("CNI_IFNAME", "eth0");
        env.put("CNI_PATH", "/opt/cni/bin");
        env.put("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=" + namespace + ";K8S_POD_NAME=" + name
                + ";K8S_POD_INFRA_CONTAINER_ID=c0ffee;K8S_POD_UID=" + uid);
        Process p = pb.start();
        p.getOutputStream().write(conf.getBytes(StandardCharsets.UTF_8));
        p.getOutputStream().close();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("plugin did not finish");
        }
        return new Run(p.exitValue(), new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8),
                new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8));
    }

    static CniNode agent(Duration ztunnelWait) throws IOException {
        CniNode.Settings s = CniNode.Settings.of("node-a", dir).withZtunnelWait(ztunnelWait)
                .withResyncInterval(Duration.ofSeconds(1));
        return new CniNode(s, new DirectoryPodSource(dir.resolve("yaml"), Duration.ofSeconds(1)),
                new SimpleMeterRegistry()).start();
    }

    static String inode(String netns) throws IOException {
        return "net:[" + Files.getAttribute(TestNetworks.path(netns), "unix:ino") + "]";
    }

    @Test
    void addEnrolsAMeshPodBeforeItStartsAndPassesThePreviousResultOn() throws Exception {
        String pristine = TestNetworks.iptablesSave(MESH_POD);
        Path socket = dir.resolve("cni-plugin.sock");

        // No ztunnel yet: ADD waits (2 s here), then fails clearly and leaves nothing behind.
        try (CniNode node = agent(Duration.ofSeconds(2))) {
            waitForSource(node);
            Run noZtunnel = plugin("ADD", MESH_POD, "shop", "cart", "uid-cart", socket);
            assertEquals(1, noZtunnel.code(), noZtunnel.out());
            JsonNode error = json.readTree(noZtunnel.out());
            assertEquals(100, error.path("code").asInt(), noZtunnel.out());
            assertTrue(error.path("details").asText().contains("no ztunnel"), noZtunnel.out());
            assertEquals(pristine, TestNetworks.iptablesSave(MESH_POD), "rules rolled back");

            try (ZdsTestClient ztunnel = ZdsTestClient.connect(node.zds().socketPath()).autoAck(r -> "")) {
                Run add = plugin("ADD", MESH_POD, "shop", "cart", "uid-cart", socket);
                assertEquals(0, add.code(), add.out() + add.err());
                assertEquals(json.readTree(PREV_RESULT), json.readTree(add.out()), "prevResult passed on unchanged");
                // When the plugin returns, the rules are in and the ztunnel holds the pod's netns.
                String rules = TestNetworks.iptablesSave(MESH_POD);
                assertTrue(rules.contains("-A OUTPUT -j AMBIENT_OUTPUT"), rules);
                assertTrue(rules.contains("REDIRECT --to-ports 15006"), rules);
                assertEquals(inode(MESH_POD), ztunnel.workloads.get("uid-cart"));

                Run check = plugin("CHECK", MESH_POD, "shop", "cart", "uid-cart", socket);
                assertEquals(0, check.code(), check.out());

                Run legacy = plugin("ADD", LEGACY_POD, "legacy", "old", "uid-old", socket);
                assertEquals(0, legacy.code(), legacy.out());
                assertEquals(json.readTree(PREV_RESULT), json.readTree(legacy.out()));
                assertEquals("", TestNetworks.iptablesSave(LEGACY_POD), "no rules for a pod outside the mesh");
                assertFalse(ztunnel.workloads.containsKey("uid-old"));

                Run unknown = plugin("ADD", LEGACY_POD, "shop", "ghost", "uid-ghost", socket);
                assertEquals(1, unknown.code(), unknown.out());
                assertTrue(unknown.out().contains("not known to the agent"), unknown.out());

                Run del = plugin("DEL", MESH_POD, "shop", "cart", "uid-cart", socket);
                assertEquals(0, del.code(), del.out());
                assertEquals("", del.out());
                assertEquals(pristine, TestNetworks.iptablesSave(MESH_POD), "DEL removes the rules");
                waitFor(() -> !ztunnel.workloads.containsKey("uid-cart"));
            }
        }

        // The agent is gone: a mesh pod must not start uncaptured; DEL still succeeds.
        Run down = plugin("ADD", MESH_POD, "shop", "cart", "uid-cart", socket);
        assertEquals(1, down.code());
        JsonNode e = json.readTree(down.out());
        assertEquals(11, e.path("code").asInt(), down.out());
        assertTrue(e.path("msg").asText().contains("cni-agent unreachable"), down.out());
        assertEquals("1.0.0", e.path("cniVersion").asText());
        assertEquals(0, plugin("DEL", MESH_POD, "shop", "cart", "uid-cart", socket).code());
        // Namespaces the mesh never touches start without the agent.
        Run system = plugin("ADD", LEGACY_POD, "kube-system", "coredns", "uid-dns", socket);
        assertEquals(0, system.code(), system.out());
        assertEquals(json.readTree(PREV_RESULT), json.readTree(system.out()));
    }

    @Test
    void versionAndBadInput() throws Exception {
        ProcessBuilder pb = new ProcessBuilder(LAUNCHER.toString());
        pb.environment().put("CNI_COMMAND", "VERSION");
        Process p = pb.start();
        p.getOutputStream().close();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        JsonNode v = json.readTree(p.getInputStream().readAllBytes());
        assertEquals(0, p.exitValue());
        assertTrue(v.path("supportedVersions").toString().contains("1.0.0"), v.toString());

        pb = new ProcessBuilder(LAUNCHER.toString());
        pb.environment().put("CNI_COMMAND", "ADD");
        p = pb.start();
        p.getOutputStream().write("{\"cniVersion\": \"1.0.0\", \"prevResult\": {".getBytes(StandardCharsets.UTF_8));
        p.getOutputStream().close();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        JsonNode e = json.readTree(p.getInputStream().readAllBytes());
        assertEquals(1, p.exitValue());
        assertEquals(4, e.path("code").asInt(), e.toString());
    }

    @Test
    void anAgentThatHangsUpWithoutAnAnswerIsTryAgainNotSuccess() throws Exception {
        // An agent failing mid-request closes the connection: the pod must not start uncaptured.
        Path socket = dir.resolve("silent.sock");
        Files.deleteIfExists(socket);
        try (var server = java.nio.channels.ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
            server.bind(java.net.UnixDomainSocketAddress.of(socket));
            Thread.ofVirtual().start(() -> {
                try (var c = server.accept()) {
                    c.read(java.nio.ByteBuffer.allocate(4096)); // the request, then nothing
                } catch (IOException ignored) {
                    // the test ended
                }
            });
            Run r = plugin("ADD", "silent-pod", "shop", "silent", "uid-silent", socket);
            assertEquals(1, r.code(), r.toString());
            JsonNode e = json.readTree(r.out());
            assertEquals(11, e.path("code").asInt(), e.toString());
            assertTrue(e.path("msg").asText().contains("no answer"), e.toString());
        }
    }

    static void waitForSource(CniNode node) throws InterruptedException {
        waitFor(node.enroller()::sourceSynced);
    }

    static void waitFor(java.util.function.BooleanSupplier c) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!c.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("not within 10 s");
            }
            Thread.sleep(20);
        }
    }
}
