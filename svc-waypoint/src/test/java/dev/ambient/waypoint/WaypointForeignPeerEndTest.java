package dev.ambient.waypoint;

import static dev.ambient.waypoint.MeshFixtures.client;
import static dev.ambient.waypoint.MeshFixtures.key;
import static dev.ambient.waypoint.MeshFixtures.pod;
import static dev.ambient.waypoint.MeshFixtures.service;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.waypoint.state.WaypointState;
import io.micrometer.prometheus.PrometheusConfig;
import io.micrometer.prometheus.PrometheusMeterRegistry;
import io.vertx.core.json.JsonObject;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The end of a TCP tunnel through the waypoint when a peer that is not ours (python-h2 with OpenSSL
 * and a mesh certificate) ends its side with END_STREAM and then at once RST_STREAM(NO_ERROR), as
 * RFC 9113 8.1 allows a peer whose side is complete (Envoy and Go do it), while what it sent is
 * still backed up in the waypoint behind a slow reader. Every byte must reach the other end, then a
 * clean FIN, not a reset. A reset without END_STREAM, or with an error code, stays an abort. Both
 * directions: the endpoint's HBONE server is foreign (shared-proto's {@code hbone_server.py}, told
 * ports), or the client is (shared-proto's {@code hbone_hostile_client.py}, mode upload-then-reset).
 * A client connection may leave no more such tunnels finishing than it may have streams open. After
 * each case a good client still gets through.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class WaypointForeignPeerEndTest {

    static final String NS = "demo";
    static final int HBONE = 58008;
    static final int ENDPOINT_HBONE = 58108;
    static final String WAYPOINT_IP = "127.0.118.1";
    /** A workload whose HBONE server is python-h2 (hbone_server.py). */
    static final String FOREIGN_IP = "127.0.119.1";
    /** A workload behind our own HBONE endpoint server: the slow sink and the echo. */
    static final String APP_IP = "127.0.119.2";
    static final int SINK_PORT = 58721;
    static final int ECHO_PORT = 58722;
    /** An application that reads every connection at once, to its end, and records what it read. */
    static final int RECORDER_PORT = 58723;
    /** The waypoint's max-streams-per-connection here: also what one connection may leave finishing. */
    static final int STREAMS_PER_CONNECTION = 4;
    /**
     * More than the windows and socket buffers on the way hold, read slowly: when the peer's
     * END_STREAM and reset come, the waypoint holds some of it queued toward the slow side and some
     * unread in the stream it paused (the reset arrives ahead of those frames).
     */
    static final int TOLD_BYTES = 24 << 20;
    static final int UPLOAD_BYTES = 24 << 20;
    /** How long the slow reader waits before it starts. */
    static final long LATE_MILLIS = 3_000;
    /** Then it reads this much at a time, with a pause between: about 10 MiB/s. */
    static final int SLOW_READ_BYTES = 256 << 10;
    static final long SLOW_READ_PAUSE_MILLIS = 25;

    static final SpiffeId CLIENT = new SpiffeId("cluster.local", NS, "client");
    static final SpiffeId WAYPOINT = new SpiffeId("cluster.local", NS, "waypoint");
    static final SpiffeId FOREIGN = new SpiffeId("cluster.local", NS, "told");

    // hbone_server.py's told ports: TOLD_BYTES, then END_STREAM + RST(NO_ERROR) / RST(NO_ERROR) alone / END_STREAM + RST(CANCEL).
    static final Service TOLD_END_NO_ERROR = service("told-end", NS, "127.0.120.1", 9000, 7001, "tcp");
    static final Service TOLD_RESET_ONLY = service("told-reset", NS, "127.0.120.2", 9000, 7002, "tcp");
    static final Service TOLD_END_CANCEL = service("told-cancel", NS, "127.0.120.3", 9000, 7003, "tcp");
    static final Service SINK = service("sink", NS, "127.0.120.4", 9000, SINK_PORT, "tcp");
    static final Service ECHO = service("echo", NS, "127.0.120.5", 9000, ECHO_PORT, "tcp");
    /** hbone_server.py's port 7004: a workload that never reads, its windows never given back. */
    static final Service BLACKHOLE = service("blackhole", NS, "127.0.120.6", 9000, 7004, "tcp");
    /**
     * The same workload on a port that declares no protocol: the 200 comes first, the endpoint is
     * dialled once the first bytes say TCP, and a small upload's END_STREAM + reset arrive during that dial.
     */
    static final Service BLACKHOLE_SNIFFED = service("blackhole-sniffed", NS, "127.0.120.7", 9000, 7004, "");
    /** The recorder on a port that declares no protocol: sniffed, then its endpoint dialled. */
    static final Service RECORDER_SNIFFED = service("recorder-sniffed", NS, "127.0.120.8", 9000, RECORDER_PORT, "");

    @TempDir
    static Path dir;
    static HboneTestBox box;
    static WaypointNode waypoint;
    static HboneTestBox.PemFiles clientPem;
    static Process foreignServer;
    static final Map<String, InetSocketAddress> tunnels = new ConcurrentHashMap<>();
    /** What the sink read of its last connection. */
    static volatile CompletableFuture<Received> lastSink = new CompletableFuture<>();
    /** What the recorder read, one entry per connection. */
    static final LinkedBlockingQueue<Received> recorded = new LinkedBlockingQueue<>();
    static final List<String> accessLog = java.util.Collections.synchronizedList(new ArrayList<>());
    static final Handler capture = new LogCapture(accessLog);

    /** @param bytes read; @param sha256 of them; @param end "EOF" or the error that ended the reading */
    record Received(long bytes, String sha256, String end) {
    }

    @BeforeAll
    static void start() throws Exception {
        box = new HboneTestBox(dir);
        waypoint = box.waypoint(WAYPOINT_IP, HBONE, ENDPOINT_HBONE,
                Map.of("waypoint.listen.max-streams-per-connection", Integer.toString(STREAMS_PER_CONNECTION)),
                new PrometheusMeterRegistry(PrometheusConfig.DEFAULT));
        List<Service> told = List.of(TOLD_END_NO_ERROR, TOLD_RESET_ONLY, TOLD_END_CANCEL, BLACKHOLE,
                BLACKHOLE_SNIFFED);
        List<Service> ours = List.of(SINK, ECHO, RECORDER_SNIFFED);
        List<Service> all = new ArrayList<>(told);
        all.addAll(ours);
        waypoint.store().replace(WaypointState.of(List.of(backing(pod("told", NS, "told", FOREIGN_IP, null, 0, 0), told),
                backing(pod("app", NS, "app", APP_IP, null, 0, 0), ours), client("client", NS, "client", "127.0.0.1")),
                all, List.of(), List.of()));
        box.endpointServer(new InetSocketAddress(APP_IP, ENDPOINT_HBONE), new SpiffeId("cluster.local", NS, "app"));
        foreignServer = startForeignServer();
        serve(SINK_PORT, WaypointForeignPeerEndTest::slowSink);
        serve(RECORDER_PORT, s -> {
            s.setSoTimeout(20_000);
            recorded.add(readToEnd(s.getInputStream()));
        });
        java.util.logging.Logger.getLogger("dev.ambient.waypoint.access").addHandler(capture);
        serve(ECHO_PORT, s -> {
            s.getInputStream().transferTo(s.getOutputStream());
            s.shutdownOutput();
        });
        clientPem = box.pemFiles(CLIENT, dir);
        int port = 58730;
        for (Service s : all) {
            tunnels.put(s.getName(), box.clientTunnel(new InetSocketAddress(WAYPOINT_IP, port++), CLIENT,
                    new InetSocketAddress(WAYPOINT_IP, HBONE), WAYPOINT, vip(s)));
        }
    }

    @AfterAll
    static void stop() throws Exception {
        java.util.logging.Logger.getLogger("dev.ambient.waypoint.access").removeHandler(capture);
        if (foreignServer != null) {
            foreignServer.destroy();
            foreignServer.waitFor(5, TimeUnit.SECONDS);
        }
        if (box != null) {
            box.close();
        }
    }

    static Workload backing(Workload w, List<Service> services) {
        Workload.Builder b = w.toBuilder();
        for (Service s : services) {
            Port p = s.getPorts(0);
            b.putServices(key(s), PortList.newBuilder().addPorts(Port.newBuilder()
                    .setServicePort(p.getServicePort()).setTargetPort(p.getTargetPort())).build());
        }
        return b.build();
    }

    static InetSocketAddress vip(Service s) {
        return new InetSocketAddress(WaypointState.address(s.getAddresses(0).getAddress().toByteArray()),
                s.getPorts(0).getServicePort());
    }

    static Path sharedScript(String name) {
        Path script = Path.of(System.getProperty("basedir", ".")).toAbsolutePath()
                .resolve("../shared-proto/src/test/python").resolve(name).normalize();
        assertTrue(Files.isRegularFile(script), "shared-proto's python-h2 peer: " + script);
        return script;
    }

    /** hbone_server.py as the HBONE server of the "told" workload, with that workload's certificate. */
    static Process startForeignServer() throws Exception {
        HboneTestBox.PemFiles pem = box.pemFiles(FOREIGN, dir);
        Path err = dir.resolve("hbone_server.err");
        Process p = new ProcessBuilder("/usr/bin/python3", sharedScript("hbone_server.py").toString(), "--listen",
                FOREIGN_IP + ":" + ENDPOINT_HBONE, "--cert", pem.chain().toString(), "--key", pem.key().toString(),
                "--ca", pem.root().toString(), "--told-bytes", Integer.toString(TOLD_BYTES)).redirectError(err.toFile()).start();
        p.getOutputStream().close();
        CountDownLatch listening = new CountDownLatch(1);
        Thread.ofVirtual().start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null;) {
                    System.out.println("hbone_server.py: " + line);
                    if (line.contains("\"listening\"")) {
                        listening.countDown();
                    }
                }
            } catch (IOException ignored) {
                // the process ended
            }
        });
        assertTrue(listening.await(20, TimeUnit.SECONDS), "hbone_server.py did not start: " + Files.readString(err));
        return p;
    }

    static void serve(int port, HboneTestBox.App behaviour) throws IOException {
        // A failure shows in what the client or the sink recorded.
        box.app(new InetSocketAddress(APP_IP, port), behaviour, e -> { });
    }

    /** Reads nothing for a while (the upload backs up into the waypoint), then all of it slowly, until EOF or a reset. */
    static void slowSink(Socket s) throws Exception {
        Thread.sleep(LATE_MILLIS);
        s.setSoTimeout(20_000);
        lastSink.complete(readToEnd(s.getInputStream()));
    }

    static Received readToEnd(InputStream in) throws Exception {
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        byte[] buf = new byte[64 << 10];
        long n = 0;
        long nextPause = SLOW_READ_BYTES;
        String end = "EOF";
        try {
            for (int r; (r = in.read(buf)) >= 0;) {
                sha.update(buf, 0, r);
                n += r;
                if (n >= nextPause) {
                    Thread.sleep(SLOW_READ_PAUSE_MILLIS);
                    nextPause += SLOW_READ_BYTES;
                }
            }
        } catch (IOException e) {
            end = e.toString();
        }
        return new Received(n, HexFormat.of().formatHex(sha.digest()), end);
    }

    /** Bytes i % 251, as both python peers send them. */
    static String patternSha256(int n) throws Exception {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i % 251);
        }
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    static Socket connect(Service s) throws IOException {
        Socket socket = new Socket();
        socket.setSoTimeout(20_000);
        socket.connect(tunnels.get(s.getName()), 5_000);
        return socket;
    }

    /** What a client of the told service reads, late and slowly. */
    static Received readTold(Service told) throws Exception {
        try (Socket s = connect(told)) {
            Thread.sleep(LATE_MILLIS);
            return readToEnd(s.getInputStream());
        }
    }

    /** A good client after each case: 256 KiB echoed through the waypoint, then EOF. */
    static void goodClientGetsThrough() throws Exception {
        byte[] body = new byte[256 << 10];
        new java.util.Random(7).nextBytes(body);
        try (Socket s = connect(ECHO)) {
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    s.getOutputStream().write(body);
                    s.shutdownOutput();
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            byte[] back = s.getInputStream().readAllBytes();
            writer.join();
            assertArrayEquals(body, back, "a good client's echo after the case");
        }
    }

    // ------------------------------------------------------------- the endpoint's side is foreign

    @Test
    void endpointEndsWithEndStreamThenNoErrorResetAndTheSlowClientGetsEveryByteThenFin() throws Exception {
        Received got = readTold(TOLD_END_NO_ERROR);
        System.out.println("told END_STREAM + RST(NO_ERROR): client read " + got);
        assertEquals("EOF", got.end(), "the client's reading ends with a FIN, not a reset, after " + got.bytes() + " bytes");
        assertEquals(TOLD_BYTES, got.bytes(), "bytes the slow client read");
        assertEquals(patternSha256(TOLD_BYTES), got.sha256(), "the answer's digest");
        goodClientGetsThrough();
    }

    /**
     * RST_STREAM(NO_ERROR) without END_STREAM, and RST_STREAM(CANCEL) after END_STREAM, are aborts
     * (RFC 9113 8.1; 8.5 maps a reset to a TCP reset, which discards what is not yet delivered).
     */
    @ParameterizedTest
    @ValueSource(strings = {"told-reset", "told-cancel"})
    void endpointAbortReachesTheClientAsAReset(String name) throws Exception {
        Received got = readTold(name.equals("told-reset") ? TOLD_RESET_ONLY : TOLD_END_CANCEL);
        System.out.println(name + ": client read " + got);
        assertTrue(got.end().contains("reset"), "an abort reaches the client as a reset: " + got);
        goodClientGetsThrough();
    }

    // ------------------------------------------------------------- the client's side is foreign

    /** hbone_hostile_client.py upload-then-reset to {@code target}; returns its JSON summary. */
    static JsonObject uploadThenReset(Service target, String... extra) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("/usr/bin/python3", sharedScript("hbone_hostile_client.py").toString(),
                "--mode", "upload-then-reset", "--server", WAYPOINT_IP + ":" + HBONE, "--cert",
                clientPem.chain().toString(), "--key", clientPem.key().toString(), "--ca", clientPem.root().toString(),
                "--authority", vip(target).getAddress().getHostAddress() + ":" + vip(target).getPort(),
                "--payload", Integer.toString(UPLOAD_BYTES), "--wait", "8"));
        cmd.addAll(List.of(extra));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "hbone_hostile_client.py did not finish");
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        System.out.println("hbone_hostile_client.py: " + out);
        return new JsonObject(out.substring(out.lastIndexOf('\n') + 1));
    }

    @Test
    void clientEndsWithEndStreamThenNoErrorResetAndTheSlowApplicationGetsEveryByteThenFin() throws Exception {
        lastSink = new CompletableFuture<>();
        JsonObject client = uploadThenReset(SINK);
        assertEquals(UPLOAD_BYTES, client.getLong("sent_bytes"), "the client sent it all: " + client);
        Received got = lastSink.get(30, TimeUnit.SECONDS);
        System.out.println("client END_STREAM + RST(NO_ERROR): application read " + got);
        assertEquals("EOF", got.end(), "the application's reading ends with a FIN, not a reset, after " + got.bytes()
                + " bytes");
        assertEquals(UPLOAD_BYTES, got.bytes(), "bytes the slow application read");
        assertEquals(client.getString("sent_sha256"), got.sha256(), "the upload's digest");
        goodClientGetsThrough();
    }

    @Test
    void clientNoErrorResetWithoutEndStreamIsStillAnAbort() throws Exception {
        lastSink = new CompletableFuture<>();
        JsonObject client = uploadThenReset(SINK, "--no-end");
        Received got = lastSink.get(30, TimeUnit.SECONDS);
        System.out.println("client RST(NO_ERROR) without END_STREAM after " + client.getLong("sent_bytes")
                + " bytes: application read " + got);
        assertTrue(got.end().contains("reset"), "an abort reaches the application as a reset: " + got);
        goodClientGetsThrough();
    }

    /**
     * The attack found on sniffed ports: the client's upload, END_STREAM and RST_STREAM(NO_ERROR)
     * arrive together, and the reset lands while the waypoint dials the endpoint it sniffed TCP for;
     * Netty closes the stream then. Every upload still reaches the application, then a FIN, and each
     * tunnel gets its access-log line. Four client connections of four tunnels each: a connection's
     * tunnels let go of while their endpoint is dialled count among its finishing tunnels, and four
     * is what one may leave (the bound's own case is the blackhole's test above).
     */
    @Test
    void sniffedClientEndingDuringTheDialStillHasEveryByteDeliveredThenFin() throws Exception {
        int connections = 4;
        int tunnels = connections * STREAMS_PER_CONNECTION;
        int payload = 16 << 10;
        recorded.clear();
        accessLog.clear();
        String sha256 = null;
        for (int i = 0; i < connections; i++) {
            JsonObject client = uploadThenReset(RECORDER_SNIFFED, "--tunnels", Integer.toString(STREAMS_PER_CONNECTION),
                    "--payload", Integer.toString(payload), "--wait", "0.5");
            assertEquals((long) STREAMS_PER_CONNECTION * payload, client.getLong("sent_bytes"),
                    "the client sent it all: " + client);
            sha256 = client.getString("sent_sha256");
        }
        List<Received> got = new ArrayList<>();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (got.size() < tunnels && System.nanoTime() < deadline) {
            Received r = recorded.poll(100, TimeUnit.MILLISECONDS);
            if (r != null) {
                got.add(r);
            }
        }
        String target = APP_IP + ":" + RECORDER_PORT;
        List<String> lines = linesFor(target, tunnels);
        long duringDial = lines.stream().filter(l -> l.contains(DIAL_REASON)).count();
        long whole = got.stream().filter(r -> r.bytes() == payload && r.end().equals("EOF")).count();
        System.out.printf("sniffed: %d tunnels of %d KiB ended (END_STREAM + RST(NO_ERROR)) at once: the application"
                + " read %d whole, then EOF (%s); %d ended during the dial; log: %s%n", tunnels, payload >> 10, whole,
                got, duringDial, lines);
        assertEquals(tunnels, got.size(), "connections the application saw: " + got);
        for (Received r : got) {
            assertEquals("EOF", r.end(), "the application's reading ends with a FIN, not a reset: " + got);
            assertEquals(payload, r.bytes(), "bytes the application read: " + got);
            assertEquals(sha256, r.sha256(), "the upload's digest");
        }
        assertEquals(tunnels, lines.size(), "one access-log line per tunnel: " + lines);
        assertTrue(lines.stream().allMatch(l -> l.contains("sent=" + payload)), "each line counts the upload: " + lines);
        assertTrue(duringDial > 0, "the case is the one meant: some reset landed during the dial: " + lines);
        goodClientGetsThrough();
    }

    /** The access-log line of a tunnel whose client ended cleanly while its endpoint was dialled. */
    static final String DIAL_REASON = "the client ended during the dial";

    /** The TCP access-log lines naming {@code target}, once {@code n} of them are there or 10 s passed. */
    static List<String> linesFor(String target, int n) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        List<String> lines;
        do {
            synchronized (accessLog) {
                lines = accessLog.stream().filter(l -> l.startsWith("tcp ") && l.contains("target=" + target)).toList();
            }
            if (lines.size() >= n) {
                return lines;
            }
            Thread.sleep(50);
        } while (System.nanoTime() < deadline);
        return lines;
    }

    /**
     * The attack: one connection opens tunnels one after another to a workload that reads nothing
     * (its HBONE server never gives a window back), each an upload then END_STREAM +
     * RST_STREAM(NO_ERROR). Each reset frees its stream's place and gives its window back to the
     * client, while the waypoint would go on holding what it read and could not deliver. Beyond the
     * connection's stream limit such tunnels are aborted, counted and logged. On the declared port
     * 4 MiB each; on the sniffed one (the 200 before the dial) 256 KiB, more than the workload's
     * 64 KiB window so that the waypoint's END_STREAM toward it never goes out, and most resets land
     * while the endpoint is dialled.
     */
    @ParameterizedTest
    @CsvSource({"blackhole, 4194304", "blackhole-sniffed, 262144"})
    void aClientConnectionLeavesNoMoreTunnelsFinishingThanItMayHaveStreams(String name, int payload) throws Exception {
        Service target = name.equals(BLACKHOLE.getName()) ? BLACKHOLE : BLACKHOLE_SNIFFED;
        int tunnels = 16;
        int before = waypoint.dispatcher().tcpTunnels();
        double abortedBefore = aborted();
        accessLog.clear();
        JsonObject client = uploadThenReset(target, "--tunnels", Integer.toString(tunnels), "--payload",
                Integer.toString(payload), "--wait", "1");
        assertEquals((long) tunnels * payload, client.getLong("sent_bytes"), "the client sent it all: " + client);
        Thread.sleep(1_000); // what was aborted closes
        int held = waypoint.dispatcher().tcpTunnels() - before;
        double counted = aborted() - abortedBefore;
        List<String> lines = linesFor(FOREIGN_IP + ":7004", tunnels - held);
        System.out.printf("%s: %d tunnels of %d KiB let go on one connection (stream limit %d) toward a workload that"
                + " does not read: the waypoint still holds %d, counted as refused (finishing_tunnels) %.0f; log: %s%n",
                name, tunnels, payload >> 10, STREAMS_PER_CONNECTION, held, counted, lines);
        assertTrue(held <= STREAMS_PER_CONNECTION, held + " tunnels held for one connection, more than its "
                + STREAMS_PER_CONNECTION + " streams");
        assertTrue(held > 0, "the tunnels within the bound are still being delivered, not dropped");
        assertEquals(tunnels - held, counted, "every tunnel aborted is counted in"
                + " waypoint_hbone_refused_total{reason=finishing_tunnels}");
        assertEquals(tunnels - held, lines.size(), "each aborted tunnel has its access-log line: " + lines);
        goodClientGetsThrough();
    }

    private static double aborted() {
        return waypoint.registry().get("waypoint_hbone_refused_total").tag("reason", "finishing_tunnels").counter()
                .count();
    }
}
