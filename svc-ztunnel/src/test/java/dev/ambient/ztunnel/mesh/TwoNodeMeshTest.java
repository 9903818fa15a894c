package dev.ambient.ztunnel.mesh;

import static dev.ambient.ztunnel.mesh.LoopbackMesh.roundTrip;
import static dev.ambient.ztunnel.mesh.LoopbackMesh.sha256;
import static dev.ambient.ztunnel.mesh.LoopbackMesh.socks;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.ztunnel.ZtunnelNode;
import dev.ambient.ztunnel.admin.AdminServer;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two ztunnels ("node-a" and "node-b") on loopback: a client workload on node-a reaches workloads
 * on node-b through HBONE, with the identities, policies and metrics a user would check.
 */
class TwoNodeMeshTest {

    static final String MESH = """
            workloads:
            - name: sleep
              namespace: default
              serviceAccount: sleep
              workloadIps: [127.0.10.1]
              node: node-a
              protocol: HBONE
            - name: intruder
              namespace: legacy
              serviceAccount: legacy
              workloadIps: [127.0.10.2]
              node: node-a
              protocol: HBONE
            - name: echo
              namespace: default
              serviceAccount: echo
              canonicalRevision: v1
              workloadIps: [127.0.20.1]
              node: node-b
              protocol: HBONE
              services:
                default/echo.default.svc.cluster.local: {80: 28080}
            - name: plain
              namespace: outside
              workloadIps: [127.0.30.1]
              node: node-b
              protocol: TCP
            services:
            - name: echo
              namespace: default
              vips: [127.0.100.1]
              ports: {80: 28080}
            policies:
            - name: deny-legacy
              namespace: default
              action: Deny
              rules:
              - - namespaces: [legacy]
            """;

    static final InetSocketAddress SOCKS_A = new InetSocketAddress("127.0.0.2", 25080);

    @TempDir
    static Path dir;
    static LoopbackMesh mesh;
    static ZtunnelNode nodeA;
    static ZtunnelNode nodeB;
    static LoopbackMesh.EchoServer echo;
    static LoopbackMesh.EchoServer plain;

    @BeforeAll
    static void start() throws Exception {
        mesh = new LoopbackMesh(dir, MESH);
        echo = mesh.echo("127.0.20.1", 28080);
        plain = mesh.echo("127.0.30.1", 28081);
        nodeA = mesh.node("node-a", "127.0.0.2", SOCKS_A.getPort());
        nodeB = mesh.node("node-b", "127.0.0.3", 25081);
    }

    @AfterAll
    static void stop() throws Exception {
        mesh.close();
    }

    @Test
    void largeTransfersArriveIntactBothWaysThroughTheTunnel() throws Exception {
        byte[] payload = new byte[16 << 20];
        new Random(42).nextBytes(payload);
        String back = roundTrip(socks(SOCKS_A, "127.0.10.1", "127.0.20.1", 28080), payload);
        assertEquals(sha256(payload), back, "16 MiB echoed through two ztunnels must match");
        // The echo server saw the client's own address, carried in Forwarded and kept by node-b.
        assertTrue(echo.peers.contains("127.0.10.1"), "server saw " + echo.peers);
    }

    /**
     * A client that sends a few bytes and its FIN at once, then reads the answer: the peer's last data
     * and END_STREAM may reach our relay just as the client's FIN does; the socket must close after
     * that data, never before it (about 3 in 1,000 such connections lost their answer).
     */
    @Test
    void shortConnectionsThatHalfCloseAtOnceAlwaysGetTheirWholeAnswer() throws Exception {
        byte[] payload = "short and half-closed".getBytes();
        String expected = sha256(payload);
        List<Integer> lost = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
            if (!expected.equals(roundTrip(socks(SOCKS_A, "127.0.10.1", "127.0.20.1", 28080), payload))) {
                lost.add(i);
            }
        }
        assertEquals(List.of(), lost, "connections whose answer was lost, of 1,000");
    }

    /**
     * The client sends 4 MiB and its FIN but reads nothing for 1.5 s: the echo backs up in every
     * window and buffer both ways, each relay pauses its reader, and the client's FIN waits behind
     * paused data. Once the client reads, all of it and the echo server's FIN must follow promptly
     * (a reader left paused, or a FIN never read while paused, would end in a read timeout).
     */
    @Test
    void aFinBehindBackpressureInBothDirectionsArrivesOnceTheClientReads() throws Exception {
        for (int run = 0; run < 4; run++) {
            byte[] payload = new byte[4 << 20];
            new Random(run).nextBytes(payload);
            try (Socket s = socks(SOCKS_A, "127.0.10.1", "127.0.20.1", 28080)) {
                long[] finSent = new long[1];
                Thread writer = Thread.ofVirtual().start(() -> {
                    try {
                        s.getOutputStream().write(payload);
                        s.shutdownOutput();
                        finSent[0] = System.nanoTime();
                    } catch (java.io.IOException e) {
                        throw new RuntimeException(e);
                    }
                });
                Thread.sleep(1_500);
                long readFrom = System.nanoTime();
                byte[] back = s.getInputStream().readAllBytes();
                long eof = System.nanoTime();
                writer.join();
                long afterFin = (eof - Math.max(finSent[0], readFrom)) / 1_000_000;
                System.out.printf("two ztunnels run %d: 4 MiB echoed, EOF %d ms after the client's FIN and its first read%n",
                        run, afterFin);
                assertEquals(sha256(payload), sha256(back), "run " + run + ": the echo, whole, then EOF");
                assertTrue(afterFin < 4_000, "run " + run + ": EOF took " + afterFin + " ms");
            }
        }
    }

    /**
     * Both ends speak and close at once: the client sends its request and FIN as soon as it is
     * connected (node-a holds them while it dials node-b), and the server sends its whole answer and
     * FIN as soon as it accepts (node-a's stream holds the answer and END_STREAM while the CONNECT's
     * 200 arrives, and node-b's socket holds it while node-b sets up). Every byte must arrive both
     * ways, the answer before the FIN, with no reset. Before PendingReads held the close behind the
     * reads, node-a's relay heard the stream close in the middle of replaying the held answer
     * (the stream reads the rest of its queue when the client socket drains, and closes at once) and
     * aborted: the client got part of the answer and a reset.
     */
    @Test
    void anAnswerSentWithItsFinBeforeTheTunnelIsUpArrivesWhole() throws Exception {
        byte[] answer = new byte[1 << 20];
        new Random(7).nextBytes(answer);
        byte[] request = new byte[256 << 10];
        new Random(8).nextBytes(request);
        try (TellerServer teller = new TellerServer(new InetSocketAddress("127.0.20.1", 28082), answer)) {
            List<String> broken = new ArrayList<>();
            for (int i = 0; i < 40; i++) {
                String got;
                try {
                    got = roundTrip(socks(SOCKS_A, "127.0.10.1", "127.0.20.1", 28082), request);
                } catch (java.io.IOException e) {
                    got = e.toString();
                }
                if (!sha256(answer).equals(got)) {
                    broken.add(i + ": client got " + got);
                }
                String heard = teller.received.poll(20, java.util.concurrent.TimeUnit.SECONDS);
                if (!sha256(request).equals(heard)) {
                    broken.add(i + ": server got " + heard);
                }
            }
            assertEquals(List.of(), broken, "connections that lost bytes, of 40");
        }
    }

    /** Sends its answer and FIN on accept, then reads the request to its FIN and reports its hash. */
    static final class TellerServer implements AutoCloseable {
        final java.net.ServerSocket server;
        final java.util.concurrent.BlockingQueue<String> received = new java.util.concurrent.LinkedBlockingQueue<>();
        final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();

        TellerServer(InetSocketAddress address, byte[] answer) throws java.io.IOException {
            server = new java.net.ServerSocket();
            server.setReuseAddress(true);
            server.bind(address, 64);
            pool.execute(() -> {
                while (!server.isClosed()) {
                    try {
                        Socket s = server.accept();
                        pool.execute(() -> serve(s, answer));
                    } catch (java.io.IOException e) {
                        return;
                    }
                }
            });
        }

        private void serve(Socket s, byte[] answer) {
            try (s) {
                Thread writer = Thread.ofVirtual().start(() -> {
                    try {
                        s.getOutputStream().write(answer);
                        s.shutdownOutput();
                    } catch (java.io.IOException ignored) {
                        // seen by the client as a short answer
                    }
                });
                byte[] in = s.getInputStream().readAllBytes();
                writer.join();
                received.add(sha256(in));
            } catch (Exception e) {
                received.add(e.toString());
            }
        }

        @Override
        public void close() throws java.io.IOException {
            server.close();
            pool.shutdownNow();
        }
    }

    @Test
    void serviceVipReachesAnEndpointOnItsTargetPortByName() throws Exception {
        byte[] payload = "hello service".getBytes();
        String back = roundTrip(socks(SOCKS_A, "127.0.10.1", "echo.default.svc.cluster.local", 80), payload);
        assertEquals(sha256(payload), back);
        back = roundTrip(socks(SOCKS_A, "127.0.10.1", "127.0.100.1", 80), payload);
        assertEquals(sha256(payload), back);
    }

    @Test
    void denyPolicyRefusesTheLegacyNamespace() throws Exception {
        var e = assertThrows(SocketException.class, () -> socks(SOCKS_A, "127.0.10.2", "127.0.20.1", 28080));
        assertTrue(e.getMessage().contains("not allowed"), e.getMessage());
        Counter denied = registry(nodeB).find("istio_tcp_connections_failed")
                .tag("reporter", "destination").tag("response_flags", "DENY")
                .tag("source_principal", "spiffe://cluster.local/ns/legacy/sa/legacy").counter();
        assertTrue(denied != null && denied.count() >= 1, "node-b counts the denial");
    }

    @Test
    void nonMeshDestinationPassesThroughAsPlainTcp() throws Exception {
        byte[] payload = "plain".getBytes();
        assertEquals(sha256(payload), roundTrip(socks(SOCKS_A, "127.0.10.1", "127.0.30.1", 28081), payload));
        assertTrue(registry(nodeA).find("istio_tcp_connections_opened").tag("connection_security_policy", "none")
                .tag("destination_workload", "plain").counter().count() >= 1);
    }

    @Test
    void unknownSourceIsRefused() {
        var e = assertThrows(SocketException.class, () -> socks(SOCKS_A, "127.0.99.9", "127.0.20.1", 28080));
        assertTrue(e.getMessage().contains("not allowed"), e.getMessage());
    }

    /** The legitimate pattern never meets an HBONE limit of node-b (per identity, per address, in all). */
    @Test
    void hundredsOfConcurrentStreamsShareFewConnections() throws Exception {
        int streams = 300;
        double refusedBefore = hboneRefusals(nodeB);
        ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
        List<Socket> open = new ArrayList<>();
        try {
            // All opened concurrently and held open: a stream must never be put on a connection
            // already at the server's limit (the server would refuse it).
            List<Future<Socket>> opening = new ArrayList<>();
            for (int i = 0; i < streams; i++) {
                opening.add(pool.submit(() -> socks(SOCKS_A, "127.0.10.1", "127.0.20.1", 28080)));
            }
            for (Future<Socket> f : opening) {
                open.add(f.get());
            }
            int connections = nodeA.pool().totalConnections();
            assertTrue(connections >= 3 && connections <= 5,
                    streams + " streams at 100 per connection should use 3-5 connections, used " + connections);
            List<Future<String>> results = new ArrayList<>();
            for (Socket s : open) {
                byte[] payload = ("stream " + s.getLocalPort()).getBytes();
                results.add(pool.submit((Callable<String>) () -> roundTrip(s, payload).equals(sha256(payload))
                        ? "ok" : "mismatch"));
            }
            for (Future<String> f : results) {
                assertEquals("ok", f.get());
            }
            System.out.printf("%d concurrent streams on %d pooled connections; node-b's HBONE refusals meanwhile: %.0f,"
                    + " its inbound HBONE connections: %s%n", streams, connections, hboneRefusals(nodeB) - refusedBefore,
                    registry(nodeB).get("ztunnel_hbone_connections").gauge().value());
            assertEquals(refusedBefore, hboneRefusals(nodeB), "no HBONE limit met by a pool's connections");
        } finally {
            pool.shutdownNow();
        }
    }

    /** Every HBONE connection or stream refusal of the node (ztunnel_hbone_handshakes_refused, all reasons). */
    static double hboneRefusals(ZtunnelNode node) {
        return registry(node).find("ztunnel_hbone_handshakes_refused").counters().stream()
                .mapToDouble(Counter::count).sum();
    }

    @Test
    void metricsCarryIstioNamesAndIdentities() throws Exception {
        byte[] payload = new byte[10_000];
        roundTrip(socks(SOCKS_A, "127.0.10.1", "127.0.20.1", 28080), payload);
        Counter sent = registry(nodeA).find("istio_tcp_received_bytes").tag("reporter", "source")
                .tag("source_workload", "sleep").tag("destination_workload", "echo")
                .tag("source_principal", "spiffe://cluster.local/ns/default/sa/sleep")
                .tag("destination_principal", "spiffe://cluster.local/ns/default/sa/echo")
                .tag("connection_security_policy", "mutual_tls").counter();
        assertTrue(sent != null && sent.count() >= payload.length, "client-to-server bytes on node-a");
        Counter received = registry(nodeB).find("istio_tcp_received_bytes").tag("reporter", "destination")
                .tag("source_workload", "sleep").tag("destination_canonical_revision", "v1").counter();
        assertTrue(received != null && received.count() >= payload.length, "client-to-server bytes on node-b");
        awaitTrue(() -> registry(nodeB).find("istio_tcp_connections_closed").tag("reporter", "destination")
                .counters().stream().mapToDouble(Counter::count).sum() >= 1);
    }

    @Test
    void configDumpShowsStateCertificatesAndListeners() {
        var dump = AdminServer.configDump(nodeB);
        assertEquals("node-b", dump.get("node").asText());
        assertEquals(4, dump.get("workloads").size());
        assertTrue(dump.get("certificates").toString().contains("spiffe://cluster.local/ns/default/sa/echo"));
        assertTrue(dump.get("certificates").get(0).get("notAfter") != null);
        assertTrue(dump.get("listeners").toString().contains("127.0.20.1:" + LoopbackMesh.HBONE_PORT));
    }

    @Test
    void editingTheFileAppliesANewPolicyWithoutRestart() throws Exception {
        Path cfg = mesh.configFile();
        String original = Files.readString(cfg);
        try {
            Files.writeString(cfg, original.replace("namespaces: [legacy]", "namespaces: [legacy, default]"));
            awaitTrue(() -> {
                try {
                    socks(SOCKS_A, "127.0.10.1", "127.0.20.1", 28080).close();
                    return false;
                } catch (SocketException denied) {
                    return true;
                }
            });
            // A broken edit is refused and the last good state stays.
            Files.writeString(cfg, "workloads: [ {name: broken");
            awaitTrue(() -> nodeB.localConfig().get().rejectedReloads() > 0);
            assertThrows(SocketException.class, () -> socks(SOCKS_A, "127.0.10.1", "127.0.20.1", 28080));
        } finally {
            Files.writeString(cfg, original);
            awaitTrue(() -> {
                try {
                    roundTrip(socks(SOCKS_A, "127.0.10.1", "127.0.20.1", 28080), new byte[1]);
                    return true;
                } catch (Exception stillDenied) {
                    return false;
                }
            });
        }
    }

    static MeterRegistry registry(ZtunnelNode node) {
        return node.registry();
    }

    static void awaitTrue(Callable<Boolean> condition) throws Exception {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (System.nanoTime() < deadline) {
            if (condition.call()) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("condition not met within 10 s");
    }
}
