package dev.ambient.cni.zds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ambient.cni.TestNetworks;
import dev.ambient.cni.ZdsTestClient;
import dev.ambient.cni.metrics.CniMetrics;
import dev.ambient.net.NetworkNamespace;
import dev.ambient.proto.zds.Ack;
import dev.ambient.proto.zds.WorkloadInfo;
import dev.ambient.proto.zds.WorkloadRequest;
import dev.ambient.proto.zds.WorkloadResponse;
import dev.ambient.proto.zds.ZdsHello;
import dev.ambient.proto.zds.ZdsVersion;
import dev.ambient.zds.AllowedPeers;
import dev.ambient.zds.OtherUidPeer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.EOFException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The agent's ZDS server against a ztunnel-side client over the real SOCK_SEQPACKET transport. */
@Timeout(30)
class ZdsServerTest {

    static TestNetworks nets;
    static Path pod1;
    static Path pod2;

    @TempDir
    Path dir;
    ZdsServer server;
    SimpleMeterRegistry registry = new SimpleMeterRegistry();

    @BeforeAll
    static void pods() throws Exception {
        nets = new TestNetworks();
        pod1 = nets.add("cnit-z1");
        pod2 = nets.add("cnit-z2");
    }

    @AfterAll
    static void cleanUp() {
        nets.close();
    }

    @BeforeEach
    void start() throws Exception {
        server = new ZdsServer(dir.resolve("ztunnel.sock"), Duration.ofSeconds(2), new CniMetrics(registry),
                AllowedPeers.rootOnly());
        server.start();
        server.markSnapshotReady();
    }

    @AfterEach
    void stop() {
        server.close();
    }

    static String inode(Path netns) throws Exception {
        return "net:[" + Files.getAttribute(netns, "unix:ino") + "]";
    }

    static WorkloadInfo info(String name) {
        return WorkloadInfo.newBuilder().setName(name).setNamespace("default").setServiceAccount("sa-" + name).build();
    }

    @Test
    void addCarriesThePodsNetnsAndEveryReconnectReplaysTheSnapshot() throws Exception {
        // Enrolled before any ztunnel is there: the Add waits for one.
        CompletableFuture<Void> first = server.add("uid-1", info("one"), NetworkNamespace.open(pod1));
        assertFalse(server.connected());

        try (ZdsTestClient z = ZdsTestClient.connect(server.socketPath())) {
            ZdsTestClient.Received add = z.next();
            assertEquals("uid-1", add.request().getAdd().getUid());
            assertEquals("one", add.request().getAdd().getWorkloadInfo().getName());
            assertEquals("sa-one", add.request().getAdd().getWorkloadInfo().getServiceAccount());
            assertEquals(inode(pod1), add.netns(), "the fd refers to the pod's network namespace");
            assertTrue(add.request().getAdd().getReplyRouting(), "the agent installs the pod's reply routing");
            assertFalse(first.isDone(), "done only when acked");
            z.ack("");
            first.get(5, TimeUnit.SECONDS);
            assertEquals(WorkloadRequest.PayloadCase.SNAPSHOT_SENT, z.next().request().getPayloadCase());
            z.ack("");

            CompletableFuture<Void> second = server.add("uid-2", info("two"), NetworkNamespace.open(pod2));
            ZdsTestClient.Received add2 = z.next();
            assertEquals(inode(pod2), add2.netns());
            z.ack("cannot enter namespace: EPERM");
            ExecutionException e = assertThrows(ExecutionException.class, () -> second.get(5, TimeUnit.SECONDS));
            assertTrue(e.getCause() instanceof ZdsRejected && e.getCause().getMessage().contains("EPERM"),
                    e.getCause().toString());

            // Adding the same pod with the same namespace again sends nothing.
            server.add("uid-1", info("one"), NetworkNamespace.open(pod1)).get(5, TimeUnit.SECONDS);

            CompletableFuture<Void> del = server.del("uid-1");
            ZdsTestClient.Received d = z.next();
            assertEquals("uid-1", d.request().getDel().getUid());
            assertTrue(d.fd().isEmpty());
            z.ack("");
            del.get(5, TimeUnit.SECONDS);
        }

        // The ztunnel restarts: it gets every current pod (uid-2 only) and then SnapshotSent.
        try (ZdsTestClient z = ZdsTestClient.connect(server.socketPath())) {
            ZdsTestClient.Received again = z.next();
            assertEquals("uid-2", again.request().getAdd().getUid());
            assertEquals(inode(pod2), again.netns());
            z.ack("");
            assertEquals(WorkloadRequest.PayloadCase.SNAPSHOT_SENT, z.next().request().getPayloadCase());
            z.ack("");
        }
        assertEquals(java.util.Set.of("uid-2"), server.workloads());
        assertEquals(2.0, registry.get("ambient_cni_zds_connections_total").tag("outcome", "accepted").counter()
                .count());
        assertEquals(1.0, registry.get("ambient_cni_zds_requests_total").tag("type", "add").tag("outcome", "rejected")
                .counter().count());
    }

    @Test
    void aNewerZtunnelGetsEveryPodAndOnlyThenIsTheOlderToldReplaced() throws Exception {
        server.add("uid-1", info("one"), NetworkNamespace.open(pod1));
        try (ZdsTestClient old = ZdsTestClient.connect(server.socketPath(), 1_000).autoAck(r -> "");
                ZdsTestClient fresh = ZdsTestClient.connect(server.socketPath(), 2_000)) {
            // Both connect at once (as after an agent restart mid-hand-over): either hello may be read first.
            waitFor(() -> old.snapshots == 1);
            // The new instance gets the full replay while the old one is still served.
            ZdsTestClient.Received add = fresh.next();
            assertEquals("uid-1", add.request().getAdd().getUid());
            assertEquals(inode(pod1), add.netns());
            assertEquals(2, server.connectedZtunnels());
            CompletableFuture<Void> second = server.add("uid-2", info("two"), NetworkNamespace.open(pod2));
            second.get(5, TimeUnit.SECONDS); // the old instance had it: the pod is served
            fresh.ack("");
            ZdsTestClient.Received snapshot = fresh.next();
            assertEquals(1, snapshot.request().getSnapshotSent().getOtherZtunnels(), "it is taking over from one");
            fresh.ack("");
            // Not yet: an Add queued for the new instance is unanswered, so it does not serve every pod.
            assertEquals("uid-2", fresh.next().request().getAdd().getUid());
            Thread.sleep(300);
            assertFalse(old.seen.stream().anyMatch(r -> r.request().hasReplaced()), "replaced too early");
            fresh.ack("");
            waitFor(() -> old.seen.stream().anyMatch(r -> r.request().hasReplaced()));
            assertThrows(EOFException.class, () -> old.socket().receive(), "the old connection was closed");
            waitFor(() -> server.connectedZtunnels() == 1);
            assertEquals(1.0, registry.get("ambient_cni_zds_handovers_total").tag("outcome", "ok").counter().count());

            // The new one alone gets what follows.
            CompletableFuture<Void> del = server.del("uid-1");
            assertEquals("uid-1", fresh.next().request().getDel().getUid());
            fresh.ack("");
            del.get(5, TimeUnit.SECONDS);

            // An older instance that comes back (it lost its connection) is told Replaced after its replay.
            try (ZdsTestClient stale = ZdsTestClient.connect(server.socketPath(), 500).autoAck(r -> "")) {
                waitFor(() -> stale.seen.stream().anyMatch(r -> r.request().hasReplaced()));
                assertEquals(1, stale.snapshots);
                assertEquals(0, stale.seen.stream().filter(r -> r.request().hasSnapshotSent()).findFirst().orElseThrow()
                        .request().getSnapshotSent().getOtherZtunnels(), "it takes over from nobody: it is the older");
            }
        }
    }

    @Test
    void aNewerZtunnelThatRefusesAPodDoesNotReplaceTheOlderUntilItLeaves() throws Exception {
        server.add("uid-1", info("one"), NetworkNamespace.open(pod1));
        try (ZdsTestClient old = ZdsTestClient.connect(server.socketPath(), 1_000).autoAck(r -> "")) {
            waitFor(() -> old.snapshots == 1);
            // As when the old instance's listeners do not share their ports: the new one cannot bind.
            try (ZdsTestClient fresh = ZdsTestClient.connect(server.socketPath(), 2_000)) {
                assertEquals("uid-1", fresh.next().request().getAdd().getUid());
                fresh.ack("cannot listen on 15008: Address already in use");
                assertTrue(fresh.next().request().hasSnapshotSent());
                fresh.ack("");
                Thread.sleep(500);
                assertFalse(old.seen.stream().anyMatch(r -> r.request().hasReplaced()),
                        "the old one keeps serving the pod the new one could not take");
                old.close(); // it goes away (its pod deleted): the new one is asked again at once
                ZdsTestClient.Received retry = fresh.next();
                assertEquals("uid-1", retry.request().getAdd().getUid());
                assertEquals(inode(pod1), retry.netns());
                fresh.ack("");
            }
        }
    }

    @Test
    void aThirdConnectionIsRefusedWhileTwoAreOpen() throws Exception {
        try (ZdsTestClient first = ZdsTestClient.connectRaw(server.socketPath());
                ZdsTestClient second = ZdsTestClient.connectRaw(server.socketPath())) {
            Thread.sleep(200); // both accepted (saying nothing yet)
            try (ZdsTestClient third = ZdsTestClient.connectRaw(server.socketPath())) {
                assertThrows(EOFException.class, () -> third.socket().receive());
            }
            assertEquals(1.0, registry.get("ambient_cni_zds_connections_total").tag("outcome", "refused").counter()
                    .count());
            first.close();
            // A place is free again: a good ztunnel gets through.
            waitFor(() -> {
                try (ZdsTestClient z = ZdsTestClient.connect(server.socketPath(), 4_000)) {
                    return z.next().request().hasSnapshotSent();
                } catch (java.io.IOException e) {
                    return false;
                }
            });
        }
    }

    @Test
    void anOldZtunnelThatNeverAnswersReplacedDoesNotHoldUpTheNewOne() throws Exception {
        server.add("uid-1", info("one"), NetworkNamespace.open(pod1));
        try (ZdsTestClient old = ZdsTestClient.connect(server.socketPath(), 1_000)) {
            assertEquals("uid-1", old.next().request().getAdd().getUid());
            old.ack("");
            assertTrue(old.next().request().hasSnapshotSent());
            old.ack("");
            try (ZdsTestClient fresh = ZdsTestClient.connect(server.socketPath(), 2_000).autoAck(r -> "")) {
                assertTrue(old.next().request().hasReplaced());
                long t0 = System.nanoTime();
                // The old one stays silent; the new one is served all the same.
                server.add("uid-2", info("two"), NetworkNamespace.open(pod2)).get(1, TimeUnit.SECONDS);
                waitFor(() -> fresh.workloads.containsKey("uid-2"));
                assertTrue(System.nanoTime() - t0 < 1_500_000_000L, "the new instance waited for the old one");
                assertThrows(EOFException.class, () -> old.socket().receive(), "dropped at its ack timeout");
                waitFor(() -> registry.find("ambient_cni_zds_handovers_total").tag("outcome", "lost").counter() != null);
                assertEquals(1, server.connectedZtunnels());
            }
        }
    }

    @Test
    void aProcessOfAnotherUidGetsNoNetnsAndReplacesNobody() throws Exception {
        assumeTrue(OtherUidPeer.available(), "needs root, setpriv and /usr/bin/python3");
        server.add("uid-1", info("one"), NetworkNamespace.open(pod1));
        try (ZdsTestClient real = ZdsTestClient.connect(server.socketPath(), 1_000).autoAck(r -> "")) {
            waitFor(() -> real.snapshots == 1);
            // Not root, but past the socket file's mode (CAP_DAC_OVERRIDE); it says it started later than
            // the real ztunnel and answers every request as a ztunnel would.
            byte[] laterHello = ZdsHello.newBuilder().setVersion(ZdsVersion.ZDS_V1).setStartedUnixMicros(2_000)
                    .build().toByteArray();
            byte[] ack = WorkloadResponse.newBuilder().setAck(Ack.getDefaultInstance()).build().toByteArray();
            Map<String, String> hostile;
            try (OtherUidPeer peer = OtherUidPeer.client(server.socketPath(), laterHello, ack, Duration.ofSeconds(4))) {
                hostile = peer.report();
            }
            assertEquals("true", hostile.get("connected"), hostile.get("output"));
            assertEquals("0", hostile.get("packets"), "no request reached it: " + hostile.get("output"));
            assertEquals("0", hostile.get("fds"), "no network namespace reached it");
            assertEquals("true", hostile.get("eof"), "closed at once, not left to time out");
            assertFalse(real.seen.stream().anyMatch(r -> r.request().hasReplaced()), "the real ztunnel was replaced");
            assertEquals(1, server.connectedZtunnels());
            assertEquals(1.0, registry.get("ambient_cni_zds_refused_total").tag("reason", "uid").counter().count());
            assertEquals(null, registry.find("ambient_cni_zds_connections_total").tag("outcome", "refused").counter(),
                    "it never took one of the two places");

            // The real ztunnel keeps being served.
            server.add("uid-2", info("two"), NetworkNamespace.open(pod2)).get(5, TimeUnit.SECONDS);
            assertEquals(inode(pod2), real.workloads.get("uid-2"));
        }
    }

    @Test
    void processesOfAnotherUidTakeNeitherOfTheTwoPlaces() throws Exception {
        assumeTrue(OtherUidPeer.available(), "needs root, setpriv and /usr/bin/python3");
        server.add("uid-1", info("one"), NetworkNamespace.open(pod1));
        byte[] hello = ZdsHello.newBuilder().setVersion(ZdsVersion.ZDS_V1).setStartedUnixMicros(2_000).build()
                .toByteArray();
        byte[] ack = WorkloadResponse.newBuilder().setAck(Ack.getDefaultInstance()).build().toByteArray();
        // Two of them connect first and stay, answering like ztunnels, as if to hold both places.
        try (OtherUidPeer a = OtherUidPeer.client(server.socketPath(), hello, ack, Duration.ofSeconds(8));
                OtherUidPeer b = OtherUidPeer.client(server.socketPath(), hello, ack, Duration.ofSeconds(8))) {
            a.await("connected=true");
            b.await("connected=true");
            try (ZdsTestClient real = ZdsTestClient.connect(server.socketPath(), 1_000).autoAck(r -> "")) {
                waitFor(() -> real.snapshots == 1);
                assertEquals(inode(pod1), real.workloads.get("uid-1"), "the real ztunnel is served");
            }
            for (OtherUidPeer peer : java.util.List.of(a, b)) {
                Map<String, String> report = peer.report();
                assertEquals("0", report.get("packets"), report.get("output"));
            }
        }
        assertEquals(2.0, registry.get("ambient_cni_zds_refused_total").tag("reason", "uid").counter().count());
        assertEquals(null, registry.find("ambient_cni_zds_connections_total").tag("outcome", "refused").counter());
    }

    @Test
    void aWrongHelloOrAMissingAckEndsTheConnection() throws Exception {
        try (ZdsTestClient z = ZdsTestClient.connectRaw(server.socketPath())) {
            z.socket().send(ZdsHello.newBuilder().setVersion(ZdsVersion.ZDS_VERSION_UNSPECIFIED).build().toBuilder()
                    .setVersionValue(7).build());
            assertThrows(EOFException.class, () -> z.socket().receive());
        }
        server.add("uid-1", info("one"), NetworkNamespace.open(pod1));
        try (ZdsTestClient z = ZdsTestClient.connect(server.socketPath())) {
            assertEquals("uid-1", z.next().request().getAdd().getUid());
            // No ack: after the 2 s ack timeout the agent hangs up; a reconnect gets the Add again.
            long t0 = System.nanoTime();
            assertThrows(EOFException.class, () -> z.socket().receive());
            assertTrue(System.nanoTime() - t0 > 1_000_000_000L);
        }
        try (ZdsTestClient z = ZdsTestClient.connect(server.socketPath())) {
            assertEquals("uid-1", z.next().request().getAdd().getUid());
        }
    }

    static void waitFor(java.util.function.BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("condition not met within 10 s");
            }
            Thread.sleep(20);
        }
    }
}
