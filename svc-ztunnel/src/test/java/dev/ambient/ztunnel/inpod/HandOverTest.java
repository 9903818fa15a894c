package dev.ambient.ztunnel.inpod;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ambient.net.NetworkNamespace;
import dev.ambient.ztunnel.ZtunnelNode;
import io.micrometer.core.instrument.Counter;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * An upgrade of the node's ztunnel, for real (root): instance A serves pods ha and hb; instance B
 * starts beside it in the same node, gets every pod over ZDS and binds its listeners next to A's
 * (SO_REUSEPORT in each pod's namespace, {@code tcp_migrate_req} set as the agent sets it); then A is
 * told it is replaced, stops accepting and drains. Across it, pod ha runs a request loop (a new
 * connection per request through 15001 → HBONE → hb's 15008, several per 10 ms) and two long
 * streams to an echo server in hb: not one request may fail, the stream that ends before the
 * deadline must survive, the one that outlives it is closed at the deadline and counted.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class HandOverTest {

    static final String IP_HA = "10.248.2.1";
    static final String IP_HB = "10.248.2.2";
    static final String UID_HA = "0d5e7a10-aaaa-4c2b-8d3e-00000000ha01";
    static final String UID_HB = "0d5e7a10-bbbb-4c2b-8d3e-00000000hb02";
    static final List<String> PODS = List.of("ha", "hb");
    static final long DEADLINE_MS = 4_000;

    static final String MESH = """
            workloads:
            - name: pod-ha
              namespace: shop
              serviceAccount: client
              workloadIps: [10.248.2.1]
              node: node-a
              protocol: HBONE
            - name: pod-hb
              namespace: shop
              serviceAccount: server
              workloadIps: [10.248.2.2]
              node: node-a
              protocol: HBONE
            """;

    static final String ECHO = """
            import socketserver
            class Echo(socketserver.BaseRequestHandler):
                def handle(self):
                    while True:
                        data = self.request.recv(65536)
                        if not data:
                            return
                        self.request.sendall(data)
            socketserver.ThreadingTCPServer.allow_reuse_address = True
            socketserver.ThreadingTCPServer.daemon_threads = True
            socketserver.ThreadingTCPServer(("0.0.0.0", 9000), Echo).serve_forever()
            """;

    @TempDir
    static Path dir;
    static String marker;
    static Process httpServer;
    static Process echoServer;
    static AgentSide agent;
    static ZtunnelNode nodeA;
    static ZtunnelNode nodeB;
    static NetworkNamespace podHa;

    @BeforeAll
    static void start() throws Exception {
        assumeTrue(PodNetwork.usable(), "needs root, iproute2, iptables-restore and curl");
        PodNetwork.createPods(Map.of("ha", IP_HA, "hb", IP_HB), PODS);
        for (String pod : PODS) {
            // What the node agent sets beside its rules: a closing listener hands its queue to the other.
            PodNetwork.sh("ip netns exec zpod-" + pod + " sysctl -qw net.ipv4.tcp_migrate_req=1");
        }
        marker = "handover-" + UUID.randomUUID();
        httpServer = PodNetwork.serveMarker("hb", dir, marker);
        Path echo = Files.writeString(dir.resolve("echo.py"), ECHO);
        echoServer = PodNetwork.start("hb", "/usr/bin/python3", echo.toString());
        PodNetwork.await(() -> PodNetwork.ports("hb").contains(9000), "echo server in hb");
        Files.writeString(dir.resolve("mesh.yaml"), MESH);
        agent = new AgentSide(dir.resolve("run/ztunnel.sock"));
        nodeA = startNode();
        agent.acceptZtunnel();
        enrolBoth(0);
        podHa = NetworkNamespace.open(PodNetwork.netnsPath("ha"));
    }

    static ZtunnelNode startNode() throws Exception {
        return InpodNode.start(dir.resolve("mesh.yaml"), dir.resolve("run/ztunnel.sock"), dir.resolve("ca"),
                Map.of("ztunnel.inpod.drain-timeout", DEADLINE_MS + "ms"));
    }

    static void enrolBoth(int otherZtunnels) throws Exception {
        assertEquals("", agent.add(UID_HA, "shop", "pod-ha", "client", PodNetwork.netnsPath("ha")));
        assertEquals("", agent.add(UID_HB, "shop", "pod-hb", "server", PodNetwork.netnsPath("hb")));
        assertEquals("", agent.snapshotSent(otherZtunnels));
    }

    @AfterAll
    static void stop() {
        if (podHa != null) {
            podHa.close();
        }
        if (nodeB != null) {
            nodeB.close();
        }
        if (echoServer != null) {
            echoServer.destroyForcibly();
        }
        InpodNode.stopAll(nodeA, agent, httpServer, PODS);
    }

    @Test
    void anUpgradeRefusesNothingAndDrainsStreamsUpToTheDeadline() throws Exception {
        InpodNode.awaitCertificates(nodeA);
        assertTrue(PodClient.httpGet(podHa, IP_HB, 8080, "/marker.txt").contains(marker), "ha reaches hb via A");
        String listenerA = PodNetwork.listenerInode("hb", 15008);

        Stream shortStream = new Stream(podHa);
        Stream longStream = new Stream(podHa);
        shortStream.echo("before");
        longStream.echo("before");

        RequestLoop loop = new RequestLoop(3);
        try {
            loop.await(100);
            nodeB = startNode();
            agent.acceptNewer();
            enrolBoth(1); // B binds beside A in both pods: A's listeners still there and still accepting
            InpodNode.awaitCertificates(nodeB);
            assertEquals(0, loop.failures.size(), "while both listen: " + loop.failures);
            int beforeSwitch = loop.ok.get();
            loop.await(beforeSwitch + 100);

            assertEquals("", agent.replacePrevious("test: B is current"));
            long replacedAt = System.nanoTime();
            loop.await(loop.ok.get() + 200);
            shortStream.echo("after the switch, before the deadline");
            shortStream.close();
            longStream.echo("still open on A after the switch");

            PodNetwork.await(() -> nodeA.inpod().orElseThrow().running() == 0, "A serves no pod after Replaced");
            sleepUntil(replacedAt + TimeUnit.MILLISECONDS.toNanos(DEADLINE_MS + 1_500));
            assertTrue(longStream.closedByPeer(), "the stream that outlived the deadline was closed at it");
            loop.await(loop.ok.get() + 100);
        } finally {
            loop.stop();
        }
        System.out.printf("hand-over: %d requests succeeded, %d failed%n", loop.ok.get(), loop.failures.size());
        assertEquals(List.of(), List.copyOf(loop.failures), "no request failed across the hand-over ("
                + loop.ok.get() + " succeeded)");
        assertTrue(loop.ok.get() >= 500, "the loop ran: " + loop.ok.get());

        assertNotEquals(listenerA, PodNetwork.listenerInode("hb", 15008), "hb's 15008 is B's socket now");
        assertEquals(1.0, count(nodeA, "ztunnel_inpod_handovers_total", "role", "old"));
        assertEquals(1.0, count(nodeB, "ztunnel_inpod_handovers_total", "role", "new"));
        assertTrue(count(nodeA, "ztunnel_inpod_drain_deadline_closed_total", "cause", "handover") >= 1,
                "A counted the stream it closed at the deadline");
        // New connections after the switch are B's: it carries the loop on its own now.
        double carriedByB = count(nodeB, "istio_tcp_connections_opened_total", "reporter", "source");
        double carriedByA = count(nodeA, "istio_tcp_connections_opened_total", "reporter", "source");
        assertTrue(PodClient.httpGet(podHa, IP_HB, 8080, "/marker.txt").contains(marker), "ha reaches hb via B");
        assertEquals(carriedByA, count(nodeA, "istio_tcp_connections_opened_total", "reporter", "source"));
        assertTrue(count(nodeB, "istio_tcp_connections_opened_total", "reporter", "source") > carriedByB);
    }

    private static double count(ZtunnelNode node, String name, String tag, String value) {
        return node.registry().find(name.replace("_total", "")).tag(tag, value).counters().stream()
                .mapToDouble(Counter::count).sum();
    }

    private static void sleepUntil(long nanoTime) throws InterruptedException {
        long left = nanoTime - System.nanoTime();
        if (left > 0) {
            TimeUnit.NANOSECONDS.sleep(left);
        }
    }

    /** GET /marker.txt from pod ha to hb:8080 on a new connection each time, from several threads. */
    static final class RequestLoop {
        final AtomicInteger ok = new AtomicInteger();
        final ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
        final AtomicBoolean running = new AtomicBoolean(true);
        final List<Thread> threads = new ArrayList<>();

        RequestLoop(int threadCount) {
            for (int i = 0; i < threadCount; i++) {
                threads.add(Thread.ofPlatform().name("request-loop-" + i).start(this::run));
            }
        }

        private void run() {
            while (running.get()) {
                long t0 = System.nanoTime();
                try {
                    String answer = PodClient.httpGet(podHa, IP_HB, 8080, "/marker.txt");
                    if (answer.contains(marker)) {
                        ok.incrementAndGet();
                    } else {
                        failures.add("answer without the marker: " + answer.lines().findFirst().orElse("(empty)"));
                    }
                } catch (Exception e) {
                    failures.add(e + " after " + (System.nanoTime() - t0) / 1_000_000 + " ms");
                }
                try {
                    Thread.sleep(2);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }

        void await(int count) throws InterruptedException {
            PodNetwork.await(() -> ok.get() >= count || !failures.isEmpty(), count + " requests");
        }

        void stop() throws InterruptedException {
            running.set(false);
            for (Thread t : threads) {
                t.join(10_000);
            }
        }
    }

    /** A long-lived connection from pod ha to hb's echo server. */
    static final class Stream implements AutoCloseable {
        final SocketChannel channel;

        Stream(NetworkNamespace from) throws Exception {
            channel = from.call(SocketChannel::open);
            channel.socket().setSoTimeout(5_000);
            channel.socket().connect(new InetSocketAddress(IP_HB, 9000), 5_000);
        }

        void echo(String text) throws IOException {
            byte[] sent = (text + "\n").getBytes(StandardCharsets.US_ASCII);
            channel.write(ByteBuffer.wrap(sent));
            InputStream in = channel.socket().getInputStream();
            byte[] got = in.readNBytes(sent.length);
            assertEquals(text + "\n", new String(got, StandardCharsets.US_ASCII), "echo on the stream");
        }

        /** True when the proxy ended the stream: a write then a read sees the end or a reset. */
        boolean closedByPeer() {
            try {
                channel.write(ByteBuffer.wrap("late\n".getBytes(StandardCharsets.US_ASCII)));
                return channel.socket().getInputStream().read(new byte[16]) < 0;
            } catch (IOException e) {
                return true;
            }
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }
}
