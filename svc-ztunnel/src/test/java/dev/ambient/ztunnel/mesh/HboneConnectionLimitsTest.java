package dev.ambient.ztunnel.mesh;

import static dev.ambient.ztunnel.mesh.LoopbackMesh.roundTrip;
import static dev.ambient.ztunnel.mesh.LoopbackMesh.sha256;
import static dev.ambient.ztunnel.mesh.LoopbackMesh.socks;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ambient.ztunnel.GoodTraffic;
import dev.ambient.ztunnel.LogCapture;
import dev.ambient.ztunnel.ZtunnelNode;
import io.micrometer.core.instrument.Counter;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The node's bound on HBONE connections per peer identity counts across all of its listeners: a
 * certificate holder (python-h2, shared-proto's hostile client) spreading its connections over two
 * pods of node-b still meets one bound, refusals count in {@code ztunnel_hbone_handshakes_refused}
 * with one access-log line, and a pod with another identity keeps reaching node-b meanwhile.
 */
class HboneConnectionLimitsTest {

    static final String MESH = """
            workloads:
            - name: sleep
              namespace: default
              serviceAccount: sleep
              workloadIps: [127.0.23.1]
              node: node-a
              protocol: HBONE
            - name: other
              namespace: default
              serviceAccount: other
              workloadIps: [127.0.23.2]
              node: node-a
              protocol: HBONE
            - name: echo-1
              namespace: default
              serviceAccount: echo
              workloadIps: [127.0.24.1]
              node: node-b
              protocol: HBONE
            - name: echo-2
              namespace: default
              serviceAccount: echo
              workloadIps: [127.0.24.2]
              node: node-b
              protocol: HBONE
            """;
    static final int PER_IDENTITY = 20;
    static final int ECHO_PORT = 28380;
    static final InetSocketAddress SOCKS_A = new InetSocketAddress("127.0.0.81", 25380);

    @TempDir
    static Path dir;
    static LoopbackMesh mesh;
    static ZtunnelNode nodeB;
    static HboneClientScript.Hostile sleep;

    @BeforeAll
    static void start() throws Exception {
        mesh = new LoopbackMesh(dir, MESH);
        mesh.echo("127.0.24.1", ECHO_PORT);
        mesh.echo("127.0.24.2", ECHO_PORT);
        mesh.node("node-a", SOCKS_A.getHostString(), SOCKS_A.getPort());
        nodeB = mesh.node("node-b", "127.0.0.82", 25381,
                Map.of("ztunnel.dataplane.limits.max-connections-per-identity", Integer.toString(PER_IDENTITY)));
        sleep = HboneClientScript.Hostile.of(dir, mesh, "default", "sleep");
    }

    @AfterAll
    static void stop() throws Exception {
        if (mesh != null) {
            mesh.close();
        }
    }

    @Test
    void oneIdentitysConnectionsToAllPodsOfANodeMeetOneBound() throws Exception {
        Assumptions.assumeTrue(sleep != null, "/usr/bin/python3 cannot import h2");
        byte[] payload = "other pods keep talking".getBytes(StandardCharsets.UTF_8);
        String expected = sha256(payload);
        JsonNode first;
        JsonNode second;
        GoodTraffic.Stats good;
        try (LogCapture log = LogCapture.accessLog()) {
            GoodTraffic traffic = new GoodTraffic("other", () -> expected.equals(
                    roundTrip(socks(SOCKS_A, "127.0.23.2", "127.0.24.1", ECHO_PORT), payload)));
            // 15 connections to echo-1's listener, held; then 15 to echo-2's while those are open.
            FutureTask<JsonNode> toEcho1 = many("127.0.24.1", 15, 6);
            awaitTrue(() -> nodeB.registry().get("ztunnel_hbone_connections").gauge().value() >= 15);
            Thread.sleep(1_000); // the last of the 15 (one may be the good pod's pooled connection)
            second = many("127.0.24.2", 15, 1).get(60, TimeUnit.SECONDS);
            first = toEcho1.get(60, TimeUnit.SECONDS);
            good = traffic.stop();
            List<String> lines = log.matching(l -> l.contains("connections_per_identity"));
            System.out.printf("spiffe://cluster.local/ns/default/sa/sleep, %d per identity: 15 connections to echo-1 (%d"
                    + " kept), then 15 to echo-2 (%d kept, GOAWAYs %s); refusals counted %.0f, access-log lines %d: %s;"
                    + " pod 'other' meanwhile: %s%n", PER_IDENTITY, first.get("kept").asInt(),
                    second.get("kept").asInt(), second.get("goaways"), refused("connections_per_identity"),
                    lines.size(), lines, good);
            assertEquals(15, first.get("kept").asInt(), first.toString());
            assertEquals(PER_IDENTITY - 15, second.get("kept").asInt(), "one bound for the node: " + second);
            assertEquals(30 - PER_IDENTITY, second.get("goaways").path("11").asInt(), second.toString());
            assertEquals(30 - PER_IDENTITY, refused("connections_per_identity"), 0.0);
            assertEquals(1, lines.size(), "one access-log line (rate-limited): " + lines);
            assertTrue(lines.get(0).contains("max-connections-per-identity"), lines.get(0));
        }
        assertEquals(0, good.failed(), "another identity keeps reaching node-b: " + good);
        assertTrue(good.ok() > 0, good.toString());
    }

    /** {@code count} connections with sleep's certificate to {@code ip}'s HBONE listener, held {@code seconds}. */
    private static FutureTask<JsonNode> many(String ip, int count, int seconds) {
        FutureTask<JsonNode> run = new FutureTask<>(() -> sleep.run("many-connections",
                ip + ":" + LoopbackMesh.HBONE_PORT, 60, "--connections", Integer.toString(count), "--source",
                "127.0.0.66", "--wait", Integer.toString(seconds)));
        Thread.ofVirtual().start(run);
        return run;
    }

    private static double refused(String reason) {
        Counter c = nodeB.registry().find("ztunnel_hbone_handshakes_refused").tag("reason", reason).counter();
        return c == null ? 0 : c.count();
    }

    private static void awaitTrue(java.util.concurrent.Callable<Boolean> condition) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (!condition.call()) {
            assertTrue(System.nanoTime() < deadline, "condition not met within 15 s");
            Thread.sleep(50);
        }
    }
}
