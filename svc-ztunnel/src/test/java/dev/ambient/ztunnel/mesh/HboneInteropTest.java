package dev.ambient.ztunnel.mesh;

import static dev.ambient.ztunnel.mesh.LoopbackMesh.roundTrip;
import static dev.ambient.ztunnel.mesh.LoopbackMesh.sha256;
import static dev.ambient.ztunnel.mesh.LoopbackMesh.socks;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ambient.identity.CertificateAuthority;
import dev.ambient.ztunnel.LogCapture;
import dev.ambient.ztunnel.ZtunnelNode;
import io.micrometer.core.instrument.Counter;
import dev.ambient.ztunnel.mesh.HboneClientScript.Identity;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Interoperability of our HBONE with an HTTP/2 stack that is not ours (Debian's python3-h2 with
 * the stdlib ssl module, i.e. OpenSSL), in both directions:
 * <ul>
 * <li>{@code hbone_client.py} drives the inbound HBONE listener of a workload on node-b, sending
 *     its payload as early data (right after the CONNECT headers, before the 200);</li>
 * <li>{@code hbone_server.py} (shared-proto's, the waypoint's tests use it too) plays the HBONE
 *     listener of workloads on node-z, a node no ztunnel runs for, and node-a's outbound reaches it
 *     through SOCKS5.</li>
 * </ul>
 * Skipped only when /usr/bin/python3 cannot import h2.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class HboneInteropTest {

    static final String PYTHON = HboneClientScript.PYTHON;
    static final String TD = "cluster.local";

    static final String MESH = """
            workloads:
            - name: sleep
              namespace: default
              serviceAccount: sleep
              workloadIps: [127.0.50.1]
              node: node-a
              protocol: HBONE
            - name: curl
              namespace: default
              serviceAccount: curl
              workloadIps: [127.0.50.2]
              node: node-a
              protocol: HBONE
            - name: echo
              namespace: default
              serviceAccount: echo
              workloadIps: [127.0.51.1]
              node: node-b
              protocol: HBONE
            - name: guarded
              namespace: default
              serviceAccount: guarded
              workloadIps: [127.0.51.2]
              node: node-b
              protocol: HBONE
              waypoint: {address: 127.0.53.1}
            - name: waypoint
              namespace: default
              serviceAccount: waypoint
              workloadIps: [127.0.53.1]
              node: node-w
              protocol: HBONE
            - name: other-waypoint
              namespace: default
              serviceAccount: other-waypoint
              workloadIps: [127.0.53.2]
              node: node-w
              protocol: HBONE
            - name: ext
              namespace: default
              serviceAccount: ext
              workloadIps: [127.0.52.1]
              node: node-z
              protocol: HBONE
            - name: ext-impostor-target
              namespace: default
              serviceAccount: ext-target
              workloadIps: [127.0.52.2]
              node: node-z
              protocol: HBONE
            - name: ext-foreign-root
              namespace: default
              serviceAccount: ext-foreign
              workloadIps: [127.0.52.3]
              node: node-z
              protocol: HBONE
            policies:
            - name: deny-intruder
              namespace: default
              action: Deny
              rules:
              - - principals: ["cluster.local/ns/default/sa/intruder"]
            - name: guarded-only-from-curl
              namespace: default
              scope: WorkloadSelector
              selectedWorkloads: [cluster1//Pod/default/guarded]
              action: Allow
              rules:
              - - sourceIps: [127.0.50.2]
            """;

    static final InetSocketAddress SOCKS_A = new InetSocketAddress("127.0.0.50", 25180);
    static final String ECHO_IP = "127.0.51.1";
    static final int ECHO_PORT = 28180;
    static final String ECHO_HBONE = ECHO_IP + ":" + LoopbackMesh.HBONE_PORT;
    static final String GUARDED_IP = "127.0.51.2";
    static final int GUARDED_PORT = 28181;

    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path dir;
    static LoopbackMesh mesh;
    static LoopbackMesh.EchoServer echo;
    static LoopbackMesh.EchoServer guarded;
    static ZtunnelNode nodeB;
    static CertificateAuthority ca;
    static Path root;
    static HboneClientScript script;
    static final Map<String, PythonServer> servers = new HashMap<>();

    @BeforeAll
    static void start() throws Exception {
        Assumptions.assumeTrue(HboneClientScript.available(), PYTHON + " cannot import h2 (Debian package python3-h2)");

        mesh = new LoopbackMesh(dir, MESH);
        echo = mesh.echo(ECHO_IP, ECHO_PORT);
        guarded = mesh.echo(GUARDED_IP, GUARDED_PORT);
        mesh.node("node-a", SOCKS_A.getHostString(), SOCKS_A.getPort());
        nodeB = mesh.node("node-b", "127.0.0.51", 25181);
        // The nodes created the mesh root; this loads the same one.
        ca = CertificateAuthority.loadOrCreate(mesh.caDir(), TD, Duration.ofDays(3650));
        root = mesh.caDir().resolve(CertificateAuthority.ROOT_CERT_FILE);
        script = new HboneClientScript(dir, root);

        // Independent HBONE servers on node-z, where no ztunnel runs.
        servers.put("ext", PythonServer.start("127.0.52.1", identity(ca, "ext", "ext")));
        // Holds a valid mesh certificate, but for another service account than the workload's.
        servers.put("impostor", PythonServer.start("127.0.52.2", identity(ca, "ext", "impostor")));
        // The workload's own identity, signed by a root the mesh does not trust.
        CertificateAuthority foreign = CertificateAuthority.create(TD, Duration.ofDays(1));
        servers.put("foreign", PythonServer.start("127.0.52.3", identity(foreign, "ext-foreign", "foreign")));

        awaitTrue("node-b listens for HBONE on " + ECHO_HBONE, () -> {
            try (Socket probe = new Socket()) {
                probe.connect(new InetSocketAddress(ECHO_IP, LoopbackMesh.HBONE_PORT), 1_000);
                return true;
            } catch (IOException notYet) {
                return false;
            }
        });
    }

    @AfterAll
    static void stop() throws Exception {
        for (PythonServer s : servers.values()) {
            s.close();
        }
        if (mesh != null) {
            mesh.close();
        }
    }

    // ---- direction 1: an independent client against our inbound -------------------------------

    @Test
    void independentClientTunnelsWithEarlyDataAndSeesTheWorkloadIdentity() throws Exception {
        Identity sleep = identity(ca, "sleep", "sleep");
        // 1000 bytes: payload and END_STREAM both leave before the 200 is read.
        JsonNode small = client(sleep, ECHO_IP + ":" + ECHO_PORT, 1000, "--source", "127.0.50.1").ok();
        assertEquals(200, small.get("status").asInt(), small.toString());
        assertEquals(1000, small.get("early_bytes").asInt(), "all of it sent before the response: " + small);
        assertTrue(small.get("early_end_stream").asBoolean(), "END_STREAM sent before the response: " + small);
        assertEquals(small.get("sent_sha256").asText(), small.get("received_sha256").asText(),
                "early data must be echoed intact: " + small);
        assertEquals(1000, small.get("received_bytes").asInt(), small.toString());
        assertEquals("h2", small.get("alpn").asText());
        assertEquals("TLSv1.3", small.get("tls_version").asText());
        assertEquals("spiffe://cluster.local/ns/default/sa/echo", small.get("server_san").asText(),
                "node-b must present the destination workload's identity");
        assertTrue(echo.peers.contains("127.0.50.1"), "the workload saw the client's address: " + echo.peers);

        // 3 MiB: the first 64 KiB go early, the rest under HTTP/2 flow control.
        JsonNode big = client(sleep, ECHO_IP + ":" + ECHO_PORT, 3 << 20).ok();
        assertEquals(200, big.get("status").asInt(), big.toString());
        assertTrue(big.get("early_bytes").asInt() > 0, big.toString());
        assertEquals(3 << 20, big.get("received_bytes").asInt(), big.toString());
        assertEquals(big.get("sent_sha256").asText(), big.get("received_sha256").asText(), big.toString());
    }

    /**
     * The attack: a workload with a valid certificate claims, in {@code Forwarded}, the address that
     * an ipBlocks ALLOW admits. Only the destination's own waypoint may say where a client came from;
     * from anyone else the header is ignored, and policy, the application and the metrics see the
     * connection's real source.
     */
    @Test
    void forwardedFromAnOrdinaryWorkloadIsIgnoredByPolicyTelemetryAndTheApplication() throws Exception {
        try (LogCapture log = LogCapture.accessLog()) {
            HboneClientScript.Run r = script.connect(identity(ca, "sleep", "sleep"), GUARDED_IP + ":"
                    + LoopbackMesh.HBONE_PORT, GUARDED_IP + ":" + GUARDED_PORT, 100, "--source", "127.0.50.1",
                    "--forwarded", "for=\"127.0.50.2:4711\"");
            assertEquals(401, r.status(), "sleep (127.0.50.1) is not the address the ALLOW admits: " + r);
            assertEquals(0, guarded.accepted.get(), "nothing reached the workload");
            String line = log.await("for the refusal", l -> l.contains("src=127.0.50.1:") && l.contains("refused 401"));
            assertTrue(line.contains("forwarded header ignored"), line);
        }
        Counter denied = nodeB.registry().find("istio_tcp_connections_failed").tag("reporter", "destination")
                .tag("destination_workload", "guarded").tag("source_workload", "sleep")
                .tag("response_flags", "DENY").counter();
        assertTrue(denied != null && denied.count() >= 1, "the metrics name the real source, sleep");

        // A waypoint, but not this destination's: ignored as well.
        HboneClientScript.Run other = script.connect(identity(ca, "other-waypoint", "other-waypoint"), GUARDED_IP
                + ":" + LoopbackMesh.HBONE_PORT, GUARDED_IP + ":" + GUARDED_PORT, 100, "--source", "127.0.53.2",
                "--forwarded", "for=\"127.0.50.2:4711\"");
        assertEquals(401, other.status(), other.toString());

        // The address itself, connecting with its own certificate, is admitted (the policy works).
        HboneClientScript.Run curl = script.connect(identity(ca, "curl", "curl"), GUARDED_IP + ":"
                + LoopbackMesh.HBONE_PORT, GUARDED_IP + ":" + GUARDED_PORT, 100, "--source", "127.0.50.2");
        assertEquals(200, curl.status(), curl.toString());
        assertEquals(curl.ok().get("sent_sha256").asText(), curl.ok().get("received_sha256").asText());
    }

    @Test
    void forwardedFromTheDestinationsOwnWaypointIsBelieved() throws Exception {
        Identity waypoint = identity(ca, "waypoint", "waypoint");
        String server = GUARDED_IP + ":" + LoopbackMesh.HBONE_PORT;
        // Its own connection address is not admitted...
        assertEquals(401, script.connect(waypoint, server, GUARDED_IP + ":" + GUARDED_PORT, 100,
                "--source", "127.0.53.1").status());
        // ...but the client it speaks for is: the waypoint proves its identity, the address is believed.
        HboneClientScript.Run r = script.connect(waypoint, server, GUARDED_IP + ":" + GUARDED_PORT, 100,
                "--source", "127.0.53.1", "--forwarded", "for=\"127.0.50.2:4711\"");
        assertEquals(200, r.status(), r.toString());
        assertEquals(r.ok().get("sent_sha256").asText(), r.ok().get("received_sha256").asText(), r.toString());
        assertTrue(guarded.peers.contains("127.0.50.2"), "the workload saw the client's address: " + guarded.peers);
        Counter opened = nodeB.registry().find("istio_tcp_connections_opened").tag("reporter", "destination")
                .tag("destination_workload", "guarded").tag("source_workload", "curl").counter();
        assertTrue(opened != null && opened.count() >= 1, "the metrics name the client the waypoint spoke for");
    }

    @Test
    void badAuthorityOrMethodIsAnswered400() throws Exception {
        Identity sleep = identity(ca, "sleep", "sleep");
        for (String authority : List.of("127.0.51.99:" + ECHO_PORT, "echo.default:" + ECHO_PORT, ECHO_IP,
                ECHO_IP + ":0")) {
            JsonNode r = client(sleep, authority, 500).ok();
            assertEquals(400, r.get("status").asInt(), "CONNECT " + authority + ": " + r);
        }
        JsonNode get = client(sleep, ECHO_IP + ":" + ECHO_PORT, 10, "--method", "GET").ok();
        assertEquals(400, get.get("status").asInt(), "GET: " + get);
    }

    @Test
    void denyPolicyIsAnswered401() throws Exception {
        JsonNode r = client(identity(ca, "intruder", "intruder"), ECHO_IP + ":" + ECHO_PORT, 500).ok();
        assertEquals(401, r.get("status").asInt(), r.toString());
        assertEquals(0, r.get("received_bytes").asInt(), "nothing may reach or come from the workload: " + r);
    }

    @Test
    void clientCertificateFromAnotherRootIsRefused() throws Exception {
        // Right trust domain and a clean SPIFFE id, but not signed by the mesh root.
        Identity stranger = identity(CertificateAuthority.create(TD, Duration.ofDays(1)), "sleep", "stranger");
        HboneClientScript.Run run = client(stranger, ECHO_IP + ":" + ECHO_PORT, 100);
        assertNotEquals(0, run.exit(), "a client certificate from a foreign root must fail the handshake: " + run);
        assertTrue(run.json().get("status").isNull(), "no CONNECT may be answered: " + run);
    }

    // ---- direction 2: our outbound against an independent server -------------------------------

    @Test
    void outboundReachesAnIndependentServerWithIdentityAuthorityAndForwarded() throws Exception {
        PythonServer server = servers.get("ext");
        byte[] payload = new byte[1 << 20];
        new Random(7).nextBytes(payload);
        Socket s = socks(SOCKS_A, "127.0.50.1", "127.0.52.1", 8080);
        int clientPort = s.getLocalPort();
        assertEquals(sha256(payload), roundTrip(s, payload), "1 MiB echoed by the python server must match");

        String forwarded = "for=\"127.0.50.1:" + clientPort + "\"";
        JsonNode line = server.await("stream with " + forwarded,
                l -> forwarded.equals(l.path("forwarded").asText()));
        assertEquals(200, line.get("status").asInt(), line.toString());
        assertEquals("CONNECT", line.get("method").asText());
        assertEquals("127.0.52.1:8080", line.get("authority").asText(), line.toString());
        assertEquals("spiffe://cluster.local/ns/default/sa/sleep", line.get("client_san").asText(), line.toString());
        assertEquals(payload.length, line.get("bytes_received").asInt(), line.toString());
        assertEquals(payload.length, line.get("bytes_sent").asInt(), line.toString());
        assertEquals("end_stream", line.get("ended").asText(), "our side must end with END_STREAM: " + line);
        assertTrue(line.get("problem").isNull(), "a well-formed CONNECT: " + line);
    }

    /**
     * The independent server sends its whole answer, END_STREAM and then RST_STREAM(NO_ERROR)
     * without waiting for the request (what an HTTP/2 server whose answer is complete may do), the
     * end 0.5 s after the data, while the client's side is backed up. That is a clean end: the
     * client, reading late and never half-closing, must get all 6 MiB and then EOF, not a reset.
     * Netty hands a reset to the stream's handler at once, ahead of the frames queued while it is
     * paused, and the stream closes once they are read. Before, the relay took the early NO_ERROR
     * reset, its END_STREAM still queued, for an abort; and when it did see END_STREAM first, it took
     * the stream's close, the client's FIN not sent, for one: both reset the socket (SO_LINGER 0)
     * and threw away the answer still queued for the client.
     */
    @Test
    void anAnswerEndedAndResetWithNoErrorReachesASlowClientWhole() throws Exception {
        byte[] expected = new byte[6 << 20];
        for (int i = 0; i < expected.length; i++) {
            expected[i] = (byte) (i % 251);
        }
        try (Socket s = new Socket(new java.net.Proxy(java.net.Proxy.Type.SOCKS, SOCKS_A))) {
            s.setReceiveBufferSize(32 << 10); // no autotuning: the answer backs up in node-a, not here
            s.setSoTimeout(20_000);
            s.bind(new InetSocketAddress("127.0.50.1", 0));
            s.connect(InetSocketAddress.createUnresolved("127.0.52.1", 7001), 10_000);
            s.getOutputStream().write("a request the server does not wait for".getBytes());
            Thread.sleep(1_500); // the answer backs up in node-a while the stream ends
            byte[] got = s.getInputStream().readAllBytes();
            assertEquals(expected.length, got.length, "bytes of the answer before EOF");
            assertEquals(sha256(expected), sha256(got));
        }
        JsonNode line = servers.get("ext").await("stream to port 7001",
                l -> "127.0.52.1:7001".equals(l.path("authority").asText()));
        assertEquals("told, then reset:0", line.get("ended").asText(), line.toString());
    }

    @Test
    void concurrentStreamsAndConnectionsToAnIndependentServer() throws Exception {
        PythonServer server = servers.get("ext");
        Map<String, String> sources = Map.of("127.0.50.1", "sleep", "127.0.50.2", "curl");
        ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
        try {
            List<Socket> open = new ArrayList<>();
            Map<String, String> forwardedToSa = new HashMap<>();
            // All held open together, so the streams overlap on the pooled connections.
            for (int i = 0; i < 12; i++) {
                for (var source : sources.entrySet()) {
                    Socket s = socks(SOCKS_A, source.getKey(), "127.0.52.1", 8081);
                    open.add(s);
                    forwardedToSa.put("for=\"" + source.getKey() + ":" + s.getLocalPort() + "\"", source.getValue());
                }
            }
            List<Future<Boolean>> results = new ArrayList<>();
            for (Socket s : open) {
                byte[] payload = new byte[100_000 + s.getLocalPort()];
                new Random(s.getLocalPort()).nextBytes(payload);
                results.add(pool.submit(() -> roundTrip(s, payload).equals(sha256(payload))));
            }
            for (Future<Boolean> f : results) {
                assertTrue(f.get(60, TimeUnit.SECONDS), "every stream echoed intact");
            }
            List<JsonNode> lines = new ArrayList<>();
            for (String forwarded : forwardedToSa.keySet()) {
                lines.add(server.await("stream with " + forwarded, l -> forwarded.equals(l.path("forwarded").asText())));
            }
            for (JsonNode l : lines) {
                String sa = forwardedToSa.get(l.get("forwarded").asText());
                assertEquals("spiffe://cluster.local/ns/default/sa/" + sa, l.get("client_san").asText(), l.toString());
                assertEquals("127.0.52.1:8081", l.get("authority").asText());
                assertEquals("end_stream", l.get("ended").asText(), l.toString());
            }
            Set<Integer> connections = lines.stream().map(l -> l.get("connection").asInt()).collect(Collectors.toSet());
            assertTrue(connections.size() >= 2, "one pooled connection per source identity at least: " + connections);
            assertTrue(connections.size() < lines.size(), "streams must share connections: " + connections.size()
                    + " connections for " + lines.size() + " streams");
            int maxConcurrent = lines.stream().mapToInt(l -> l.get("concurrent").asInt()).max().orElse(0);
            assertTrue(maxConcurrent >= 2, "streams must overlap on one connection, max seen " + maxConcurrent);
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void serverPresentingAnotherIdentityIsRefused() throws Exception {
        PythonServer impostor = servers.get("impostor");
        assertThrows(IOException.class, () -> socks(SOCKS_A, "127.0.50.1", "127.0.52.2", 8080).close(),
                "a server proving sa/ext must not be accepted for a workload of sa/ext-target");
        // The handshake completed (the certificate is a valid mesh one) but no CONNECT was sent.
        Thread.sleep(300);
        assertTrue(impostor.lines.stream().noneMatch(l -> "stream".equals(l.path("event").asText())),
                "no stream may be opened to the impostor: " + impostor.lines);
    }

    @Test
    void serverCertificateFromAnotherRootIsRefused() throws Exception {
        PythonServer foreign = servers.get("foreign");
        assertThrows(IOException.class, () -> socks(SOCKS_A, "127.0.50.1", "127.0.52.3", 8080).close(),
                "a server certificate for the right SPIFFE id but from a foreign root must be refused");
        Thread.sleep(300);
        assertTrue(foreign.lines.stream().noneMatch(l -> "stream".equals(l.path("event").asText())),
                "no stream may be opened to a server outside the mesh root: " + foreign.lines);
    }

    // ---- helpers -------------------------------------------------------------------------------

    static Identity identity(CertificateAuthority authority, String serviceAccount, String fileName)
            throws IOException {
        return script.identity(authority, "default", serviceAccount, fileName);
    }

    /** Runs hbone_client.py against node-b's HBONE listener of the echo workload. */
    static HboneClientScript.Run client(Identity who, String authority, int size, String... extra) throws Exception {
        return script.connect(who, ECHO_HBONE, authority, size, extra);
    }

    /** hbone_server.py on {@code ip}:HBONE_PORT, its JSON lines collected as they come. */
    static final class PythonServer implements AutoCloseable {
        final Process process;
        final List<JsonNode> lines = new CopyOnWriteArrayList<>();
        final CountDownLatch listening = new CountDownLatch(1);
        final Path stderr;

        private PythonServer(Process process, Path stderr) {
            this.process = process;
            this.stderr = stderr;
            Thread.ofVirtual().start(() -> {
                try (BufferedReader r = new BufferedReader(
                        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                    for (String line; (line = r.readLine()) != null;) {
                        JsonNode node = JSON.readTree(line);
                        lines.add(node);
                        if ("listening".equals(node.path("event").asText())) {
                            listening.countDown();
                        }
                    }
                } catch (IOException ignored) {
                    // the process ended
                }
            });
        }

        static PythonServer start(String ip, Identity identity) throws Exception {
            Path err = Files.createTempFile(dir, "server-" + ip, ".err");
            Process p = HboneClientScript.python(List.of(PYTHON, script.scripts()
                    .resolve("../../../../shared-proto/src/test/python/hbone_server.py").normalize().toString(),
                    "--listen", ip + ":" + LoopbackMesh.HBONE_PORT, "--cert", identity.chain().toString(),
                    "--key", identity.key().toString(), "--ca", root.toString()))
                    .redirectError(err.toFile()).start();
            PythonServer s = new PythonServer(p, err);
            if (!s.listening.await(20, TimeUnit.SECONDS)) {
                s.close();
                fail("hbone_server.py on " + ip + " did not start: " + Files.readString(err));
            }
            return s;
        }

        /** Waits (bounded) for a JSON line matching {@code condition}. */
        JsonNode await(String what, Predicate<JsonNode> condition) throws Exception {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (System.nanoTime() < deadline) {
                for (JsonNode l : lines) {
                    if (condition.test(l)) {
                        return l;
                    }
                }
                if (!process.isAlive()) {
                    break;
                }
                Thread.sleep(50);
            }
            throw new AssertionError("hbone_server.py logged no " + what + "; lines: " + lines + "\nstderr: "
                    + Files.readString(stderr));
        }

        @Override
        public void close() throws Exception {
            process.destroy();
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            }
        }
    }

    static void awaitTrue(String what, java.util.concurrent.Callable<Boolean> condition) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (System.nanoTime() < deadline) {
            if (condition.call()) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("not within 15 s: " + what);
    }
}
