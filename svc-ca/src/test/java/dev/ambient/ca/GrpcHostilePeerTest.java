package dev.ambient.ca;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.controlplane.HostileGrpcPeer;
import dev.ambient.proto.ca.CertificateServiceGrpc;
import dev.ambient.proto.ca.TrustBundleRequest;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.vertx.core.json.JsonObject;
import java.lang.management.ManagementFactory;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * What one hostile pod can make the CA's gRPC port (15012) hold, with python-h2 as the attacker
 * (an HTTP/2 stack that is not ours) and, meanwhile and afterwards, a good client from another
 * address asking for the trust bundle. The bounds are shared-proto's {@code GrpcServerLimits}
 * (svc-xds has the same, {@code XdsHostilePeerTest}); the profile makes them small enough to hit.
 */
@QuarkusTest
@TestProfile(GrpcHostilePeerTest.SmallLimits.class)
class GrpcHostilePeerTest {

    public static class SmallLimits implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("control-plane.grpc.max-handshaking-connections", "30",
                    "control-plane.grpc.max-handshaking-connections-per-source", "20",
                    "control-plane.grpc.max-connection-idle", "15s",
                    "control-plane.grpc.max-connections", "60",
                    "control-plane.grpc.max-connections-per-source", "40",
                    "control-plane.grpc.max-calls", "300",
                    "control-plane.grpc.max-calls-per-source", "150");
        }
    }

    static final String METHOD = "/" + CertificateServiceGrpc.getGetTrustBundleMethod().getFullMethodName();

    static HostileGrpcPeer from(String sourceIp) {
        return new HostileGrpcPeer(CaClient.GRPC_TEST_PORT, CaClient.SERVER_NAME, METHOD, sourceIp);
    }

    /** A ztunnel on another node: one call on a fresh connection. */
    static void goodClientGetsThrough(String sourceIp) throws InterruptedException {
        try (CaClient good = CaClient.from(sourceIp, () -> CaServingTlsTest.ROOT)) {
            assertEquals(1, good.stub("box-sleep").getTrustBundle(TrustBundleRequest.getDefaultInstance()).getRootsCount());
        }
    }

    /** Heap in use after a full collection (this test runs in the CA's JVM): for the printed cost of an attack. */
    static long heapUsed() {
        for (int i = 0; i < 3; i++) {
            System.gc();
        }
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    @Test
    void connectionsWithoutCallsAreClosedWhenIdleAndSilentOnesAtTheHandshakeTimeout() throws Exception {
        try (HostileGrpcPeer.Running idle = from("127.0.0.3").connections(30, true, 35);
                HostileGrpcPeer.Running silent = from("127.0.0.4").connections(10, false, 35)) {
            assertEquals(30, idle.nextLine().getInteger("opened"));
            assertEquals(10, silent.nextLine().getInteger("opened"));
            goodClientGetsThrough("127.0.0.2");
            JsonObject preface = idle.report();
            assertEquals(30, preface.getInteger("handshaked"));
            assertEquals(0, preface.getInteger("open_at_end"), "idle connections are closed, not kept forever");
            assertEquals(30, preface.getJsonObject("goaways").getInteger("0 max_idle", 0), preface.toString());
            JsonObject nothing = silent.report();
            assertEquals(0, nothing.getInteger("open_at_end"), "the handshake timeout closes a connection that says nothing");
            assertTrue(nothing.getDouble("first_close_s") >= 9, nothing.toString());
        }
        goodClientGetsThrough("127.0.0.3");
    }

    @Test
    void oneSourceHoldsAtMostItsShareAndAllSourcesAtMostTheTotal() throws Exception {
        long before = heapUsed();
        double overShareBefore = MetricsScrape.value("control_plane_grpc_refusals_total", "limit=\"connections_per_source\"");
        try (HostileGrpcPeer.Running first = from("127.0.0.3").connections(50, true, 12)) { // held while the rest runs, ended before the 15-s idle bound
            assertEquals(50, first.nextLine().getInteger("opened"));
            // "opened" is the client's side of the handshake; the server counts a connection at its
            // SETTINGS, a moment later. Wait until it has judged all 50 (its 10 refusals counted), or
            // the second source's connections can take a place one of these would have had.
            awaitRefusals("connections_per_source", overShareBefore + 10);
            goodClientGetsThrough("127.0.0.2"); // 41 of 60: another source still gets in
            try (HostileGrpcPeer.Running second = from("127.0.0.4").connections(30, true, 2)) {
                assertEquals(30, second.nextLine().getInteger("opened"));
                System.out.printf("60 connections held: %d KiB of heap each%n", (heapUsed() - before) / 60 >> 10);
                JsonObject overTotal = second.report();
                assertEquals(30 - (60 - 40), overTotal.getJsonObject("goaways").getInteger("11 too many connections", 0),
                        "the total of 60 is reached: " + overTotal);
            }
            JsonObject overShare = first.report();
            assertEquals(50 - 40, overShare.getJsonObject("goaways").getInteger("11 too many connections from 127.0.0.3", 0),
                    overShare.toString());
        }
        goodClientGetsThrough("127.0.0.3");
        assertTrue(MetricsScrape.value("control_plane_grpc_refusals_total", "limit=\"connections\"") >= 10);
        assertTrue(MetricsScrape.value("control_plane_grpc_refusals_total", "limit=\"connections_per_source\"") >= 10);
    }

    private static void awaitRefusals(String limit, double atLeast) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        double seen;
        while ((seen = MetricsScrape.value("control_plane_grpc_refusals_total", "limit=\"" + limit + "\"")) < atLeast) {
            assertTrue(System.nanoTime() < deadline, "refusals of " + limit + ": " + seen + ", expected " + atLeast + " within 10 s");
            Thread.sleep(50);
        }
    }

    /**
     * Connections that never finish TLS (a ClientHello that never comes) are bounded in number, not
     * only by the 10-s handshake timeout: a pod that re-opens them as they time out could otherwise
     * hold as many descriptors as it likes, until accept fails for every proxy. The excess is closed
     * at accept, before any TLS work.
     */
    @Test
    void connectionsStillHandshakingAreBoundedAtAccept() throws Exception {
        double overShareBefore = MetricsScrape.value("control_plane_grpc_refusals_total",
                "limit=\"handshaking_connections_per_source\"");
        double overTotalBefore = MetricsScrape.value("control_plane_grpc_refusals_total",
                "limit=\"handshaking_connections\"");
        try (HostileGrpcPeer.Running first = from("127.0.0.3").tcp(50, 6)) {
            assertEquals(50, first.nextLine().getInteger("opened"));
            awaitRefusals("handshaking_connections_per_source", overShareBefore + 30);
            goodClientGetsThrough("127.0.0.2"); // 20 of 30 handshaking places taken: another source still gets in
            try (HostileGrpcPeer.Running second = from("127.0.0.4").tcp(30, 2)) {
                assertEquals(30, second.nextLine().getInteger("opened"));
                JsonObject overTotal = second.report();
                assertEquals(30 - 20, overTotal.getInteger("held"), "the total of 30 is reached: " + overTotal);
                assertEquals(20, overTotal.getInteger("closed_at_once"), overTotal.toString());
            }
            JsonObject overShare = first.report();
            assertEquals(20, overShare.getInteger("held"), "one address holds its share of 20: " + overShare);
            assertEquals(30, overShare.getInteger("closed_at_once"), overShare.toString());
        }
        goodClientGetsThrough("127.0.0.3");
        assertTrue(MetricsScrape.value("control_plane_grpc_refusals_total", "limit=\"handshaking_connections\"")
                >= overTotalBefore + 20);
    }

    @Test
    void aConnectionHoldsAtMostAHundredCallsWithoutAMessage() throws Exception {
        try (HostileGrpcPeer.Running streams = from("127.0.0.3").streams(1000, "-", 4)) {
            HostileGrpcPeer.assertAtMostCallsHeld(streams.report(), 100);
        }
        goodClientGetsThrough("127.0.0.3");
    }

    @Test
    void oneSourceHoldsAtMostItsShareOfCallsAndAllSourcesAtMostTheTotal() throws Exception {
        long before = heapUsed();
        // one source after the other: the first meets its share (150), the second the total (300), the third finds it full
        try (HostileGrpcPeer.Running a = from("127.0.0.3").streams(100, "-", 10);
                HostileGrpcPeer.Running b = from("127.0.0.3").streams(100, "-", 10)) {
            a.nextLine();
            b.nextLine();
            Thread.sleep(1_000);
            goodClientGetsThrough("127.0.0.2"); // the first holds its share, not the total
            try (HostileGrpcPeer.Running c = from("127.0.0.4").streams(100, "-", 6);
                    HostileGrpcPeer.Running d = from("127.0.0.4").streams(100, "-", 6)) {
                c.nextLine();
                d.nextLine();
                Thread.sleep(1_000);
                try (HostileGrpcPeer.Running e = from("127.0.0.5").streams(100, "-", 2)) {
                    e.nextLine();
                    System.out.printf("300 calls without a message held: %d KiB of heap each%n",
                            (heapUsed() - before) / 300 >> 10);
                    assertEquals(0, e.report().getInteger("open_unanswered"), "the total of 300 is held by the others");
                }
                assertEquals(150, c.report().getInteger("open_unanswered") + d.report().getInteger("open_unanswered"));
            }
            assertEquals(150, a.report().getInteger("open_unanswered") + b.report().getInteger("open_unanswered"));
        }
        assertTrue(MetricsScrape.value("control_plane_grpc_refusals_total", "limit=\"calls_per_source\"") >= 50);
        assertTrue(MetricsScrape.value("control_plane_grpc_refusals_total", "limit=\"calls\"") >= 150);
        goodClientGetsThrough("127.0.0.3");
    }

    @Test
    void aHeadersAndResetFloodIsToldToCalmDown() throws Exception {
        try (HostileGrpcPeer.Running flood = from("127.0.0.3").rapidReset(20_000, "-")) {
            HostileGrpcPeer.assertToldToCalmDown(flood.report());
        }
        goodClientGetsThrough("127.0.0.3");
    }

    /** Reset, GOAWAY, or an HTTP status other than gRPC's 200. */
    static boolean notServed(JsonObject report) {
        JsonObject status = report.getJsonObject("status");
        return report.getValue("reset") != null || report.getValue("goaway") != null
                || (status != null && !"200".equals(status.getString(":status")));
    }

    @Test
    void headersBeyondEightKibAreRefused() throws Exception {
        try (HostileGrpcPeer.Running small = from("127.0.0.3").bigHeaders(1024, "-");
                HostileGrpcPeer.Running over = from("127.0.0.3").bigHeaders(9 << 10, "-");
                HostileGrpcPeer.Running big = from("127.0.0.3").bigHeaders(64 << 10, "-")) {
            JsonObject answered = small.report();
            assertEquals("200", answered.getJsonObject("status").getString(":status"), answered.toString());
            JsonObject refusedCall = over.report();
            assertTrue(notServed(refusedCall), refusedCall.toString());
            JsonObject refused = big.report();
            assertTrue(notServed(refused), refused.toString());
        }
        goodClientGetsThrough("127.0.0.3");
    }
}
