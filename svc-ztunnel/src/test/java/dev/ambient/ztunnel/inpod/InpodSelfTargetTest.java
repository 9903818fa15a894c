package dev.ambient.ztunnel.inpod;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static dev.ambient.ztunnel.inpod.PodNetwork.await;
import static dev.ambient.ztunnel.inpod.PodNetwork.ports;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ambient.identity.CertificateAuthority;
import dev.ambient.net.NetworkNamespace;
import dev.ambient.ztunnel.GoodTraffic;
import dev.ambient.ztunnel.LogCapture;
import dev.ambient.ztunnel.OpenFiles;
import dev.ambient.ztunnel.ZtunnelNode;
import dev.ambient.ztunnel.mesh.HboneClientScript;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
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
 * In-pod mode under attack, for real (root): pods m and n are enrolled (their redirection rules
 * installed with iptables-restore, the test playing the node agent over ZDS), pod o is outside the
 * mesh. The in-pod listeners bind 0.0.0.0:15001/15006/15008 inside each enrolled pod, and the
 * ztunnel's own sockets there carry the mark the rules exempt, so a destination naming one of those
 * ports made the ztunnel dial itself: one plaintext connection from o to n's 15006 became a loop of
 * thousands of connections until the process ran out of file descriptors. Each attack here is
 * refused with a log line, the process's descriptors stay flat, and m's traffic to n keeps flowing
 * (measured and printed) while it happens.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class InpodSelfTargetTest {

    static final String IP_M = "10.248.2.1";
    static final String IP_N = "10.248.2.2";
    static final String IP_O = "10.248.2.3";
    static final List<String> PODS = List.of("m", "n", "o");
    static final int QUEUE = 8;

    static final String MESH = """
            workloads:
            - name: pod-m
              namespace: shop
              serviceAccount: client
              workloadIps: [10.248.2.1]
              node: node-a
              protocol: HBONE
            - name: pod-n
              namespace: shop
              serviceAccount: server
              workloadIps: [10.248.2.2]
              node: node-a
              protocol: HBONE
            """;

    @TempDir
    static Path dir;
    static String marker;
    static Process httpServer;
    static AgentSide agent;
    static ZtunnelNode node;
    static NetworkNamespace podM;
    static NetworkNamespace podO;

    @BeforeAll
    static void start() throws Exception {
        assumeTrue(PodNetwork.usable(), "needs root, iproute2, iptables-restore and curl");
        PodNetwork.createPods(Map.of("m", IP_M, "n", IP_N, "o", IP_O), List.of("m", "n"));
        marker = "self-target-marker-" + UUID.randomUUID();
        httpServer = PodNetwork.serveMarker("n", dir, marker);

        Path config = dir.resolve("mesh.yaml");
        Files.writeString(config, MESH);
        Path zds = dir.resolve("run/ztunnel.sock");
        agent = new AgentSide(zds);
        // One socket thread with room for 8 waiting creations: the shedding test fills exactly that.
        node = InpodNode.start(config, zds, dir.resolve("ca"), Map.of("ztunnel.inpod.socket-threads", "1",
                "ztunnel.inpod.socket-queue", Integer.toString(QUEUE)));
        agent.acceptZtunnel();
        assertEquals("", agent.add("uid-m", "shop", "pod-m", "client", PodNetwork.netnsPath("m")));
        assertEquals("", agent.add("uid-n", "shop", "pod-n", "server", PodNetwork.netnsPath("n")));
        assertEquals("", agent.snapshotSent());
        InpodNode.awaitCertificates(node);
        podM = NetworkNamespace.open(PodNetwork.netnsPath("m"));
        podO = NetworkNamespace.open(PodNetwork.netnsPath("o"));
        assertTrue(PodClient.httpGet(podM, IP_N, 8080, "/marker.txt").contains(marker), "m reaches n");
    }

    @AfterAll
    static void stop() {
        for (NetworkNamespace ns : new NetworkNamespace[] {podM, podO}) {
            if (ns != null) {
                ns.close();
            }
        }
        InpodNode.stopAll(node, agent, httpServer, PODS);
    }

    /** The attack: one plaintext connection from outside the mesh to an enrolled pod's 15006. */
    @Test
    @Order(10)
    void anOutsiderNamingAMeshPodsZtunnelPortsCannotMakeItDialItself() throws Exception {
        attack("outsider o", podO, List.of(new InetSocketAddress(IP_N, 15006), new InetSocketAddress(IP_N, 15001)));
    }

    /** A mesh pod naming another pod's ztunnel ports: its HBONE CONNECT names them as the authority. */
    @Test
    @Order(20)
    void aMeshPodNamingAnotherPodsZtunnelPortsIsRefused() throws Exception {
        attack("mesh pod m", podM, List.of(new InetSocketAddress(IP_N, 15006), new InetSocketAddress(IP_N, 15001),
                new InetSocketAddress(IP_N, 15008), new InetSocketAddress(IP_N, 15053)));
    }

    /** A pod's own loopback and its own address are not captured: they reach its in-pod listeners directly. */
    @Test
    @Order(30)
    void aPodNamingItsOwnZtunnelListenersIsRefused() throws Exception {
        attack("mesh pod m, its own listeners", podM, List.of(new InetSocketAddress("127.0.0.1", 15001),
                new InetSocketAddress("127.0.0.1", 15006), new InetSocketAddress(IP_M, 15001),
                new InetSocketAddress(IP_M, 15006)));
    }

    /** An independent HBONE client (python-h2) with a valid certificate: CONNECT to n's own ports is 400. */
    @Test
    @Order(40)
    void connectNamingThePodsZtunnelPortsIsAnswered400() throws Exception {
        assumeTrue(HboneClientScript.available(), "/usr/bin/python3 cannot import h2");
        CertificateAuthority ca = CertificateAuthority.loadOrCreate(dir.resolve("ca"), "cluster.local",
                Duration.ofDays(3650));
        HboneClientScript script = new HboneClientScript(dir, dir.resolve("ca").resolve(CertificateAuthority.ROOT_CERT_FILE));
        HboneClientScript.Identity client = script.identity(ca, "shop", "client", "client");
        long before = OpenFiles.count();
        try (LogCapture log = LogCapture.accessLog()) {
            for (int port : List.of(15006, 15001, 15008)) {
                String authority = IP_N + ":" + port;
                HboneClientScript.Run r = script.connect(client, IP_N + ":15008", authority, 100);
                assertEquals(400, r.status(), "CONNECT " + authority + ": " + r);
                String line = log.await("refusing " + authority, l -> l.contains("dst=" + authority)
                        && l.contains("refused 400"));
                assertTrue(line.contains("own"), line);
            }
        }
        HboneClientScript.Run good = script.connect(client, IP_N + ":15008", IP_N + ":8080", 100);
        assertEquals(200, good.status(), good.toString());
        settle(before);
    }

    /**
     * The socket threads' queue is bounded: with the one thread held and its queue full (as a burst
     * of creations on a stalled thread would leave it), a burst of connections that each need a
     * socket in a pod is shed at once (refused, logged, counted), no event loop waits, and traffic
     * resumes when the thread is free. Before, the queue had no bound: the burst waited there forever.
     */
    @Test
    @Order(50)
    void aBurstBeyondTheSocketThreadsQueueIsShedAndTrafficResumes() throws Exception {
        SocketThreads threads = node.inpod().orElseThrow().socketThreads();
        long fdsBefore = OpenFiles.count();
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch holding = new CountDownLatch(1);
        List<CompletableFuture<Object>> held = new ArrayList<>();
        int burst = 40;
        List<PodClient.Attempt> attempts = new ArrayList<>();
        long shedBefore;
        try (LogCapture log = LogCapture.accessLog()) {
            held.add(threads.create(podM, () -> {
                holding.countDown();
                release.await(30, TimeUnit.SECONDS);
                return null;
            }));
            assertTrue(holding.await(10, TimeUnit.SECONDS), "the socket thread is held");
            for (int i = 0; i < 100 && threads.queued() < QUEUE; i++) {
                held.add(threads.create(podM, () -> null));
            }
            assertEquals(QUEUE, threads.queued(), "the queue is full");
            shedBefore = threads.shedCount();
            // 40 connections at once from outside the mesh to n's application: each needs a socket
            // inside n (dialled by n's 15006), so each asks the socket threads.
            ExecutorService clients = Executors.newFixedThreadPool(8); // platform threads: setns
            try {
                List<Future<PodClient.Attempt>> running = new ArrayList<>();
                for (int i = 0; i < burst; i++) {
                    running.add(clients.submit(() -> PodClient.attempt(podO, new InetSocketAddress(IP_N, 8080))));
                }
                for (Future<PodClient.Attempt> f : running) {
                    attempts.add(f.get(20, TimeUnit.SECONDS));
                }
            } finally {
                clients.shutdownNow();
            }
            for (PodClient.Attempt a : attempts) {
                assertTrue(a.refused() && a.millis() < 2_000, "shed at once, not queued: " + a);
            }
            String line = log.await("for a shed connection", l -> l.contains("socket threads busy"));
            assertTrue(line.contains("ztunnel.inpod.socket-queue"), line);
            assertEquals(burst, log.awaitCount(burst, l -> l.contains("socket threads busy")),
                    "one log line per shed connection");
        } finally {
            release.countDown();
        }
        for (CompletableFuture<Object> h : held) {
            try {
                h.get(10, TimeUnit.SECONDS);
            } catch (java.util.concurrent.ExecutionException shedWhileFilling) {
                // the queue was topped up past full: that one was shed, as it should be
            }
        }
        assertEquals(burst, threads.shedCount() - shedBefore, "each shed creation counted");
        assertEquals((double) threads.shedCount(), node.registry().find("ztunnel_inpod_socket_creations_shed")
                .counter().count(), "as a metric");
        System.out.printf("socket threads (1 thread, queue %d) held: %d connections shed, slowest refusal %d ms%n",
                QUEUE, burst, attempts.stream().mapToLong(PodClient.Attempt::millis).max().orElse(0));
        // Good traffic resumes at once, from outside the mesh and between mesh pods.
        assertTrue(PodClient.httpGet(podO, IP_N, 8080, "/marker.txt").contains(marker), "o reaches n again");
        assertTrue(PodClient.httpGet(podM, IP_N, 8080, "/marker.txt").contains(marker), "m reaches n again");
        settle(fdsBefore);
    }

    /**
     * Sends each attack connection a few times from {@code from} while m's good client runs; checks
     * each was refused and logged, the descriptors stayed flat, and the good client never failed.
     */
    static void attack(String who, NetworkNamespace from, List<InetSocketAddress> targets) throws Exception {
        long before = OpenFiles.count();
        GoodTraffic.Stats good;
        long peak;
        List<String> outcomes = new ArrayList<>();
        try (LogCapture log = LogCapture.accessLog(); OpenFiles.Peak sampler = new OpenFiles.Peak()) {
            GoodTraffic traffic = new GoodTraffic("m-to-n",
                    () -> PodClient.httpGet(podM, IP_N, 8080, "/marker.txt").contains(marker));
            long t0 = System.nanoTime();
            for (int round = 0; round < 5; round++) {
                for (InetSocketAddress target : targets) {
                    PodClient.Attempt a = PodClient.attempt(from, target);
                    outcomes.add(target + " " + a.outcome() + " in " + a.millis() + " ms");
                    assertTrue(a.refused(), who + " to " + target + " must be refused, got " + a + "; fds now "
                            + OpenFiles.count() + " (before " + before + ")");
                }
            }
            Thread.sleep(300); // a loop, if any, shows meanwhile
            good = traffic.stop();
            peak = sampler.peak();
            long millis = (System.nanoTime() - t0) / 1_000_000;
            for (InetSocketAddress target : targets) {
                String dst = target.getAddress().getHostAddress() + ":" + target.getPort();
                String line = log.await("refusing " + dst, l -> l.contains("dst=" + dst) && l.contains("own"));
                assertTrue(line.contains("refused") || line.contains("failed"), line);
            }
            System.out.printf("in-pod self-target attack by %s (%d connections to %s in %d ms): open fds before %d,"
                    + " peak %d; good client m->n meanwhile: %s%n", who, outcomes.size(), targets, millis, before,
                    peak, good);
        }
        assertTrue(peak - before < 200, "no burst of sockets: before " + before + ", peak " + peak);
        assertEquals(0, good.failed(), "traffic of other pods kept flowing: " + good);
        assertTrue(good.ok() > 0, good.toString());
        settle(before);
    }

    /** The descriptors come back to where they were (connections of the good client closing meanwhile). */
    static void settle(long before) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        long now = OpenFiles.count();
        while (now - before >= 50 && System.nanoTime() < deadline) {
            Thread.sleep(100);
            now = OpenFiles.count();
        }
        assertTrue(now - before < 50, "fds must stay flat: before " + before + ", after " + now);
    }

}
