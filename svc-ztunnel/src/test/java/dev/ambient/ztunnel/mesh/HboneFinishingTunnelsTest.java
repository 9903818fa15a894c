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
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A mesh peer (python-h2, shared-proto's hostile client, with a valid certificate) opens tunnels
 * one after another on one connection to a pod whose application never reads, sends 4 MiB on each,
 * then END_STREAM + RST_STREAM(NO_ERROR): a clean end, so the ztunnel must still deliver what it
 * holds, but the reset frees the stream's place and window, so without a bound the connection
 * could leave any number of tunnels, each holding up to a stream window, behind. It may leave as
 * many as it may have streams open; the rest are aborted with one log line, and another pod's
 * traffic keeps flowing.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class HboneFinishingTunnelsTest {

    static final String MESH = """
            workloads:
            - name: sleep
              namespace: default
              serviceAccount: sleep
              workloadIps: [127.0.26.1]
              node: node-a
              protocol: HBONE
            - name: other
              namespace: default
              serviceAccount: other
              workloadIps: [127.0.26.2]
              node: node-a
              protocol: HBONE
            - name: sink
              namespace: default
              serviceAccount: sink
              workloadIps: [127.0.27.1]
              node: node-b
              protocol: HBONE
            - name: echo
              namespace: default
              serviceAccount: echo
              workloadIps: [127.0.27.2]
              node: node-b
              protocol: HBONE
            """;
    /** node-b's max-streams-per-connection: also what one connection may leave finishing. */
    static final int STREAMS_PER_CONNECTION = 4;
    static final int TUNNELS = 16;
    /** One stream window (ztunnel.dataplane.stream-window's default): all of it is sent before the reset. */
    static final int PAYLOAD = 4 << 20;
    static final String SINK_IP = "127.0.27.1";
    static final int SINK_PORT = 28390;
    static final int ECHO_PORT = 28391;
    static final InetSocketAddress SOCKS_A = new InetSocketAddress("127.0.0.83", 25382);

    @TempDir
    static Path dir;
    static LoopbackMesh mesh;
    static ZtunnelNode nodeB;
    static HboneClientScript.Hostile sleep;
    static ServerSocket sink;
    static final List<Socket> sinkSockets = new CopyOnWriteArrayList<>();

    @BeforeAll
    static void start() throws Exception {
        mesh = new LoopbackMesh(dir, MESH);
        mesh.echo("127.0.27.2", ECHO_PORT);
        sink = neverReading(new InetSocketAddress(SINK_IP, SINK_PORT));
        mesh.node("node-a", SOCKS_A.getHostString(), SOCKS_A.getPort());
        nodeB = mesh.node("node-b", "127.0.0.84", 25383,
                Map.of("ztunnel.dataplane.max-streams-per-connection", Integer.toString(STREAMS_PER_CONNECTION)));
        sleep = HboneClientScript.Hostile.of(dir, mesh, "default", "sleep");
    }

    @AfterAll
    static void stop() throws Exception {
        for (Socket s : sinkSockets) {
            s.close();
        }
        if (sink != null) {
            sink.close();
        }
        if (mesh != null) {
            mesh.close();
        }
    }

    /**
     * An application that accepts and never reads; small receive buffers, so what the kernel holds
     * for it is small and what is not delivered stays with the ztunnel.
     */
    static ServerSocket neverReading(InetSocketAddress address) throws IOException {
        ServerSocket server = new ServerSocket();
        server.setReuseAddress(true);
        server.setReceiveBufferSize(64 * 1024);
        server.bind(address, 1024);
        Thread.ofVirtual().start(() -> {
            while (!server.isClosed()) {
                try {
                    sinkSockets.add(server.accept());
                } catch (IOException e) {
                    return;
                }
            }
        });
        return server;
    }

    @Test
    void aClientConnectionLeavesNoMoreTunnelsFinishingThanItMayHaveStreams() throws Exception {
        Assumptions.assumeTrue(sleep != null, "/usr/bin/python3 cannot import h2");
        byte[] payload = "other pods keep talking".getBytes(StandardCharsets.UTF_8);
        String expected = sha256(payload);
        JsonNode client;
        Held held;
        GoodTraffic.Stats good;
        List<String> lines;
        double abortedBefore = aborted();
        try (LogCapture log = new LogCapture("dev.ambient.hbone")) {
            GoodTraffic traffic = new GoodTraffic("other", () -> expected.equals(
                    roundTrip(socks(SOCKS_A, "127.0.26.2", "127.0.27.2", ECHO_PORT), payload)));
            client = uploadThenReset();
            Thread.sleep(1_000); // what was aborted closes
            held = heldTowardTheSink();
            good = traffic.stop();
            lines = log.matching(l -> l.contains("still finishing"));
        }
        double counted = aborted() - abortedBefore;
        System.out.printf("%d tunnels of %d MiB, each ended with END_STREAM + RST_STREAM(NO_ERROR), on one connection"
                + " (stream limit %d) toward an application that does not read (accepted %d): the ztunnel still holds"
                + " %d, with %.1f MiB of their bytes in its memory (%.1f MiB more in socket buffers); log lines %s;"
                + " pod 'other' meanwhile: %s; counted as refused (finishing_tunnels) %.0f%n", TUNNELS, PAYLOAD >> 20, STREAMS_PER_CONNECTION, sinkSockets.size(),
                held.tunnels(), held.inProcess() / 1048576.0, held.kernelBytes() / 1048576.0, lines, good, counted);
        assertEquals((long) TUNNELS * PAYLOAD, client.get("sent_bytes").asLong(), "the client sent it all: " + client);
        assertEquals(TUNNELS, sinkSockets.size(), "every tunnel reached the application");
        assertTrue(held.tunnels() <= STREAMS_PER_CONNECTION, held.tunnels() + " tunnels held for one connection, more than its "
                + STREAMS_PER_CONNECTION + " streams");
        assertTrue(held.tunnels() > 0, "the tunnels within the bound are still finishing, not thrown away");
        assertEquals(1, lines.size(), "one log line for the connection: " + lines);
        assertEquals(TUNNELS - held.tunnels(), counted, "every tunnel aborted is counted in"
                + " ztunnel_hbone_handshakes_refused{reason=finishing_tunnels}");
        assertEquals(0, good.failed(), "another pod keeps reaching node-b: " + good);
        assertTrue(good.ok() > 0, good.toString());
        // And afterwards, a new tunnel works.
        assertEquals(expected, roundTrip(socks(SOCKS_A, "127.0.26.2", "127.0.27.2", ECHO_PORT), payload));
    }

    /** ztunnel_hbone_handshakes_refused{reason=finishing_tunnels} of node-b. */
    private static double aborted() {
        Counter c = nodeB.registry().find("ztunnel_hbone_handshakes_refused").tag("reason", "finishing_tunnels").counter();
        return c == null ? 0 : c.count();
    }

    /** hbone_hostile_client.py upload-then-reset, sleep's certificate, to the sink; its JSON summary. */
    private static JsonNode uploadThenReset() throws Exception {
        return sleep.run("upload-then-reset", SINK_IP + ":" + LoopbackMesh.HBONE_PORT, 120, "--authority",
                SINK_IP + ":" + SINK_PORT, "--source", "127.0.26.1", "--tunnels", Integer.toString(TUNNELS),
                "--payload", Integer.toString(PAYLOAD), "--wait", "1");
    }

    /**
     * What the ztunnel still holds toward the sink: its sockets there that it has not closed
     * (ESTABLISHED on its side; one it finished is in FIN-WAIT or gone, one it aborted is gone), and
     * the bytes of those tunnels the kernel has taken (the ztunnel's send queues and the sink's
     * receive queues); each tunnel's 4 MiB less those is still in the ztunnel's own memory.
     */
    record Held(int tunnels, long kernelBytes) {
        long inProcess() {
            return (long) tunnels * PAYLOAD - kernelBytes;
        }
    }

    private static Held heldTowardTheSink() throws Exception {
        List<String[]> ztunnelSide = ss("dst", SINK_IP + ":" + SINK_PORT);
        long kernel = ztunnelSide.stream().mapToLong(c -> Long.parseLong(c[1])).sum();
        List<String> held = ztunnelSide.stream().map(c -> c[2]).toList();
        kernel += ss("src", SINK_IP + ":" + SINK_PORT).stream().filter(c -> held.contains(c[3]))
                .mapToLong(c -> Long.parseLong(c[0])).sum();
        return new Held(held.size(), kernel);
    }

    /** {@code ss} lines of established TCP sockets: Recv-Q, Send-Q, local, peer. */
    private static List<String[]> ss(String direction, String address) throws Exception {
        Process ss = new ProcessBuilder("ss", "-tnH", "state", "established", direction, address)
                .redirectErrorStream(true).start();
        String out = new String(ss.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(ss.waitFor(10, TimeUnit.SECONDS) && ss.exitValue() == 0, "ss: " + out);
        return out.lines().filter(l -> !l.isBlank()).map(l -> l.strip().split("\\s+")).toList();
    }
}
