package dev.ambient.ztunnel.mesh;

import static dev.ambient.ztunnel.mesh.LoopbackMesh.roundTrip;
import static dev.ambient.ztunnel.mesh.LoopbackMesh.sha256;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ambient.ztunnel.ZtunnelNode;
import io.micrometer.core.instrument.Counter;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Transparent capture with real iptables REDIRECT rules (as root): unmodified clients connect to
 * pod IPs, the kernel redirects them to 15001 (outbound) or 15006 (inbound plaintext), and the
 * ztunnel recovers the original destination with SO_ORIGINAL_DST. The rules live in their own
 * nat chain, match only this test's 127.0.7x addresses, exempt the ztunnel's socket mark, and
 * are removed afterwards.
 */
class TrafficCaptureTest {

    static final String CHAIN = "AMBIENT_TEST_CAPTURE";

    static final String MESH = """
            workloads:
            - name: sleep
              namespace: default
              serviceAccount: sleep
              workloadIps: [127.0.70.1]
              node: node-a
              protocol: HBONE
            - name: echo
              namespace: default
              serviceAccount: echo
              workloadIps: [127.0.71.1]
              node: node-b
              protocol: HBONE
            - name: vault
              namespace: secure
              serviceAccount: vault
              workloadIps: [127.0.71.2]
              node: node-b
              protocol: HBONE
            policies:
            - name: deny-banned-ip
              namespace: default
              action: Deny
              rules:
              - - sourceIps: [127.0.72.2]
            peerAuthentications:
            - name: strict
              namespace: secure
              mode: STRICT
            """;

    @TempDir
    static Path dir;
    static LoopbackMesh mesh;
    static ZtunnelNode nodeA;
    static ZtunnelNode nodeB;
    static LoopbackMesh.EchoServer echo;
    static LoopbackMesh.EchoServer vault;

    @BeforeAll
    static void start() throws Exception {
        assumeTrue(canUseIptables(), "needs root and iptables");
        iptables(true, "-t", "nat", "-F", CHAIN);
        iptables(true, "-t", "nat", "-D", "OUTPUT", "-j", CHAIN);
        iptables(true, "-t", "nat", "-X", CHAIN);
        iptables(false, "-t", "nat", "-N", CHAIN);
        iptables(false, "-t", "nat", "-A", CHAIN, "-m", "mark", "--mark", "1337", "-j", "RETURN");
        iptables(false, "-t", "nat", "-A", CHAIN, "-p", "tcp", "-s", "127.0.70.1", "-d", "127.0.71.0/24",
                "-j", "REDIRECT", "--to-ports", "25001");
        iptables(false, "-t", "nat", "-A", CHAIN, "-p", "tcp", "-s", "127.0.72.0/24", "-d", "127.0.71.0/24",
                "-j", "REDIRECT", "--to-ports", "25006");
        iptables(false, "-t", "nat", "-A", "OUTPUT", "-j", CHAIN);

        mesh = new LoopbackMesh(dir, MESH);
        echo = mesh.echo("127.0.71.1", 28090);
        vault = mesh.echo("127.0.71.2", 28090);
        nodeA = mesh.node("node-a", "127.0.0.4", 0, Map.of("ztunnel.ports.outbound-capture", "25001"));
        nodeB = mesh.node("node-b", "127.0.0.5", 0, Map.of("ztunnel.ports.inbound-plaintext", "25006"));
    }

    @AfterAll
    static void stop() throws Exception {
        if (mesh != null) {
            mesh.close();
        }
        iptables(true, "-t", "nat", "-D", "OUTPUT", "-j", CHAIN);
        iptables(true, "-t", "nat", "-F", CHAIN);
        iptables(true, "-t", "nat", "-X", CHAIN);
    }

    @Test
    void unmodifiedClientIsCapturedAndTunnelled() throws Exception {
        byte[] payload = new byte[4 << 20];
        new Random(7).nextBytes(payload);
        assertEquals(sha256(payload), roundTrip(plainSocket("127.0.70.1", "127.0.71.1", 28090), payload));
        Counter mtls = nodeA.registry().find("istio_tcp_connections_opened").tag("reporter", "source")
                .tag("source_workload", "sleep").tag("destination_workload", "echo")
                .tag("connection_security_policy", "mutual_tls").counter();
        assertTrue(mtls != null && mtls.count() >= 1, "node-a tunnelled the captured connection");
        assertTrue(echo.peers.contains("127.0.70.1"), "the server sees the real client: " + echo.peers);
    }

    @Test
    void plaintextFromOutsideTheMeshIsAcceptedUnlessStrictOrDenied() throws Exception {
        byte[] payload = "from outside".getBytes();
        assertEquals(sha256(payload), roundTrip(plainSocket("127.0.72.1", "127.0.71.1", 28090), payload));
        Counter plain = nodeB.registry().find("istio_tcp_connections_opened").tag("reporter", "destination")
                .tag("destination_workload", "echo").tag("connection_security_policy", "none").counter();
        assertTrue(plain != null && plain.count() >= 1, "node-b counted the plaintext connection");

        int before = vault.accepted.get();
        assertTrue(refused("127.0.72.1", "127.0.71.2", 28090, payload), "STRICT refuses plaintext");
        assertEquals(before, vault.accepted.get(), "the STRICT workload never saw the connection");

        assertTrue(refused("127.0.72.2", "127.0.71.1", 28090, payload),
                "a DENY on the source IP applies to plaintext too");
    }

    static Socket plainSocket(String from, String to, int port) throws IOException {
        Socket s = new Socket();
        s.setSoTimeout(10_000);
        s.bind(new InetSocketAddress(from, 0));
        s.connect(new InetSocketAddress(to, port), 5_000);
        return s;
    }

    /** Refused: the connection is reset or closed without the echo coming back. */
    static boolean refused(String from, String to, int port, byte[] payload) throws Exception {
        try {
            return !sha256(payload).equals(roundTrip(plainSocket(from, to, port), payload));
        } catch (IOException reset) {
            return true;
        }
    }

    static boolean canUseIptables() {
        try {
            return "0".equals(new String(new ProcessBuilder("id", "-u").start().getInputStream().readAllBytes()).trim())
                    && Files.isExecutable(Path.of("/usr/sbin/iptables"))
                    && new ProcessBuilder("iptables", "-t", "nat", "-L", "OUTPUT", "-n").start().waitFor() == 0;
        } catch (Exception e) {
            return false;
        }
    }

    static void iptables(boolean mayFail, String... args) throws Exception {
        var cmd = new java.util.ArrayList<>(List.of("iptables", "-w"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(10, TimeUnit.SECONDS) || (p.exitValue() != 0 && !mayFail)) {
            throw new IllegalStateException(String.join(" ", cmd) + " failed: " + out);
        }
    }
}
