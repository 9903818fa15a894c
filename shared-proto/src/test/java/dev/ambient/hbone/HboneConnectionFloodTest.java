package dev.ambient.hbone;

import static dev.ambient.hbone.HostileHboneClientTest.awaitTrue;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.hbone.HboneTestServer.Answer;
import dev.ambient.hbone.HostileHboneClientTest.Footprint;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.vertx.core.json.JsonObject;
import java.net.InetAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import org.junit.jupiter.api.Test;

/**
 * Many connections against our HBONE server, where {@link HostileHboneClientTest} abuses one: TCP
 * connects that never start TLS (a slowloris from one address, then from several), a certificate
 * holder opening connection after connection, and the legitimate pattern that must never meet a
 * limit. The clients are python processes (the sockets the server holds are the only ones in this
 * JVM's /proc/self/fd besides the good clients'); the server's file descriptors are sampled
 * throughout, and good clients from other addresses or with other identities connect and tunnel
 * meanwhile.
 */
class HboneConnectionFloodTest extends HostileClientFixture {

    /** The attacker's address; good clients come from 127.0.0.1 and {@link #ELSEWHERE}. */
    static final String ATTACKER = "127.0.0.66";
    static final InetAddress ELSEWHERE = address("127.0.0.77");

    private HboneTestServer start(HboneAdmission.Limits admission) throws Exception {
        server = new HboneTestServer(dir, HboneSettings.DEFAULTS, admission, Answer.DIAL, Duration.ZERO);
        return server;
    }

    // ---- connections that never finish their handshake ---------------------------------------------

    @Test
    void tcpConnectsThatNeverStartTlsAreClosedAtAcceptBeyondTheBoundPerAddress() throws Exception {
        start(HboneAdmission.Limits.DEFAULTS);
        int bound = server.admission.limits().maxHandshakesPerSource();
        InetAddress attacker = address(ATTACKER);
        Footprint before = Footprint.now();
        JsonObject flood;
        boolean tunnelledMeanwhile;
        try (FdSampler fds = new FdSampler(); GoodClient.Traffic good = new GoodClient.Traffic(server)) {
            FutureTask<JsonObject> attack = background(() -> HostileClient.run(server, "connect-flood",
                    "--connections", "2000", "--source", ATTACKER, "--wait", "3"));
            // While the attacker holds its bound of handshakes: a new client from another address.
            awaitTrue("the attacker holds " + bound + " handshakes", () -> server.admission.handshakesFrom(attacker) == bound);
            try (GoodClient fresh = new GoodClient(server, server.clientTls, ELSEWHERE)) {
                tunnelledMeanwhile = fresh.tunnel(100_000);
            }
            flood = attack.get(60, TimeUnit.SECONDS);
            good.close();
            var h = server.handler;
            System.out.printf("2,000 TCP connects from %s, never a TLS byte (bound %d per address): %d closed within 1 s,"
                    + " %d later, %d held until the client left; server fds %d before, at most %d during (+%d); %d log"
                    + " line(s) for %d refusals; a new client from %s tunnelled meanwhile: %s; good traffic: %s%n",
                    ATTACKER, bound, flood.getInteger("closed_within_1s"), flood.getInteger("closed_later"),
                    flood.getInteger("still_open"), before.fds(), fds.max(), fds.max() - before.fds(),
                    h.refusalsMentioning("handshakes_per_source"), h.refusalsMentioning("handshakes_per_source")
                            + h.counted(HboneLimit.HANDSHAKES_PER_SOURCE), ELSEWHERE.getHostAddress(),
                    tunnelledMeanwhile, good);

            assertEquals(2000, flood.getInteger("connected"), flood.toString());
            assertEquals(bound, flood.getInteger("still_open"), "the bound's worth wait for their handshake deadline: " + flood);
            assertEquals(2000 - bound, flood.getInteger("closed_within_1s"), "the rest closed at once: " + flood);
            assertTrue(fds.max() - before.fds() <= bound + 40, "server fds within the bound and a little: " + before.fds()
                    + " -> " + fds.max());
            assertEquals(1, h.refusalsMentioning("handshakes_per_source"), "one log line (rate-limited): " + h.refusals);
            assertEquals(2000 - bound, h.refusalsMentioning("handshakes_per_source")
                    + h.counted(HboneLimit.HANDSHAKES_PER_SOURCE), "every refusal counted");
            assertTrue(tunnelledMeanwhile, "a client from another address connects and tunnels during the flood");
            assertEquals(0, good.failed.get(), good.toString());
            assertTrue(good.ok.get() > 0, good.toString());
        }
        awaitReleased(before);
        System.out.println("connect flood, server footprint: " + before.to(Footprint.now()));
        try (GoodClient after = new GoodClient(server, server.clientTls, attacker)) {
            assertTrue(after.tunnel(10_000), "the attacker's address may connect again once its handshakes are gone");
        }
    }

    /**
     * Many addresses at once: each stays within its own bound, together they reach the process's.
     * Beyond it every new connection is closed at accept, so the descriptors stay bounded, while the
     * connections already established keep tunnelling.
     */
    @Test
    void aSlowlorisFromManyAddressesStopsAtTheProcessBound() throws Exception {
        start(new HboneAdmission.Limits(256, 100, 0));
        Footprint before = Footprint.now();
        List<JsonObject> floods = new ArrayList<>();
        try (FdSampler fds = new FdSampler(); GoodClient.Traffic good = new GoodClient.Traffic(server)) {
            List<FutureTask<JsonObject>> attacks = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                String from = "127.0.0." + (66 + i);
                attacks.add(background(() -> HostileClient.run(server, "connect-flood", "--connections", "80",
                        "--source", from, "--wait", "3")));
            }
            for (FutureTask<JsonObject> a : attacks) {
                floods.add(a.get(60, TimeUnit.SECONDS));
            }
            good.close();
            var h = server.handler;
            int held = floods.stream().mapToInt(f -> f.getInteger("still_open")).sum();
            int closedAtOnce = floods.stream().mapToInt(f -> f.getInteger("closed_within_1s")).sum();
            System.out.printf("3 addresses x 80 TCP connects, the process may hold 100 HBONE connections (1 is the good"
                    + " client's): %d held, %d closed within 1 s; server fds %d before, at most %d during; %d log line(s);"
                    + " good traffic on its established connection: %s%n", held, closedAtOnce, before.fds(), fds.max(),
                    h.refusalsMentioning("the process holds"), good);
            assertEquals(99, held, "the process's bound, less the good client's connection: " + floods);
            assertEquals(240 - 99, closedAtOnce, floods.toString());
            assertTrue(fds.max() - before.fds() <= 100 + 40, before.fds() + " -> " + fds.max());
            assertEquals(1, h.refusalsMentioning("the process holds"), h.refusals.toString());
            assertEquals(0, good.failed.get(), good.toString());
            assertTrue(good.ok.get() > 0, good.toString());
        }
        awaitTrue("all gone", () -> server.admission.connections() == 0);
        try (GoodClient after = new GoodClient(server)) {
            assertTrue(after.tunnel(10_000), "new connections are let in again");
        }
    }

    // ---- one identity, many connections ------------------------------------------------------------

    @Test
    void oneIdentityBeyondItsBoundGetsGoAwayWhileOtherIdentitiesKeepConnecting() throws Exception {
        int bound = 50;
        start(new HboneAdmission.Limits(256, 0, bound));
        Footprint before = Footprint.now();
        JsonObject flood;
        boolean otherConnected;
        try (FdSampler fds = new FdSampler();
                FdSampler held = new FdSampler(() -> server.admission.connectionsOf(HboneTestServer.CLIENT_ID));
                GoodClient.Traffic good = new GoodClient.Traffic(
                        new GoodClient(server, server.otherClientTls, null))) {
            FutureTask<JsonObject> attack = background(() -> HostileClient.run(server, "many-connections",
                    "--connections", "120", "--source", ATTACKER, "--wait", "3"));
            awaitTrue(HboneTestServer.CLIENT_ID + " holds its bound",
                    () -> server.admission.connectionsOf(HboneTestServer.CLIENT_ID) == bound);
            try (GoodClient other = new GoodClient(server, server.otherClientTls, ELSEWHERE)) {
                otherConnected = other.tunnel(100_000);
            }
            // Our own client with the identity at its bound: refused, and it says why.
            HboneClientConnection same = new HboneConnector(server.transport, HboneSettings.DEFAULTS, 5_000, 0)
                    .connect(server.address, server.clientTls, Set.of(HboneTestServer.SERVER_ID),
                            server.transport.group().next(), null).get(10, TimeUnit.SECONDS);
            ExecutionException sameRefused = assertThrows(ExecutionException.class,
                    () -> same.open(HboneHeaders.connect(server.echoAddress, null, null)).get(10, TimeUnit.SECONDS));
            same.close();
            flood = attack.get(60, TimeUnit.SECONDS);
            good.close();
            var h = server.handler;
            System.out.printf("120 connections with the certificate of %s (bound %d per identity): %d kept, GOAWAYs %s"
                    + " (\"%s\"); at most %d held by it at once; server fds %d before, at most %d during; %d log line(s)"
                    + " for %d refusals; %s connected and tunnelled meanwhile: %s; its traffic: %s; our client with the"
                    + " same identity: %s%n",
                    HboneTestServer.CLIENT_ID, bound, flood.getInteger("kept"), flood.getValue("goaways"),
                    flood.getString("goaway_debug"), held.max(), before.fds(), fds.max(),
                    h.refusalsMentioning("connections_per_identity"), h.refusalsMentioning("connections_per_identity")
                            + h.counted(HboneLimit.CONNECTIONS_PER_IDENTITY), HboneTestServer.OTHER_ID,
                    otherConnected, good, sameRefused.getCause().getMessage());

            assertEquals(120, flood.getInteger("tls"), "every connection got through TLS: " + flood);
            assertTrue(sameRefused.getCause().getMessage().contains("max-connections-per-identity"),
                    "a client of ours learns why: " + sameRefused.getCause());
            assertEquals(bound, flood.getInteger("kept"), flood.toString());
            assertEquals(120 - bound, flood.getJsonObject("goaways").getInteger(code(Http2Error.ENHANCE_YOUR_CALM)),
                    "the rest told why with GOAWAY(ENHANCE_YOUR_CALM): " + flood);
            assertNotNull(flood.getString("goaway_debug"));
            assertTrue(flood.getString("goaway_debug").contains("max-connections-per-identity"), flood.toString());
            assertEquals(bound, held.max(), "never more than the bound established at once");
            assertEquals(1, h.refusalsMentioning("connections_per_identity"), "one log line: " + h.refusals);
            assertEquals(120 - bound + 1, h.refusalsMentioning("connections_per_identity")
                    + h.counted(HboneLimit.CONNECTIONS_PER_IDENTITY), "every refusal counted (ours too)");
            assertTrue(otherConnected, "another identity connects and tunnels while the first is at its bound");
            assertEquals(0, good.failed.get(), good.toString());
            assertTrue(good.ok.get() > 0, good.toString());
        }
        awaitReleased(before);
        try (GoodClient again = new GoodClient(server)) {
            assertTrue(again.tunnel(10_000), "the identity may connect again once its connections are closed");
        }
    }

    // ---- the legitimate pattern --------------------------------------------------------------------

    /**
     * What our own clients do, at the default bounds: a pool carrying a thousand concurrent tunnels
     * on ten connections, and a burst of 200 connections opened at once from one address with one
     * identity (a waypoint's pools reaching every pod of a busy node at once). Nothing is refused.
     */
    @Test
    void pooledStreamsAndABurstOfNewConnectionsNeverMeetALimit() throws Exception {
        start(HboneAdmission.Limits.DEFAULTS);
        HboneAdmission.Limits bounds = server.admission.limits();
        HboneConnector connector = new HboneConnector(server.transport, HboneSettings.DEFAULTS, 5_000, 0);
        PoolKey key = new PoolKey(HboneTestServer.CLIENT_ID, server.address, Set.of(HboneTestServer.SERVER_ID));
        List<Http2StreamChannel> streams = new ArrayList<>();
        try (ConnectionPool pool = new ConnectionPool(connector, server.transport.group(), Duration.ofMinutes(1))) {
            List<io.netty.util.concurrent.Future<Http2StreamChannel>> opening = new ArrayList<>();
            for (int i = 0; i < 1_000; i++) {
                opening.add(pool.open(key, server.clientTls, HboneHeaders.connect(server.echoAddress, null, null), null));
            }
            for (var f : opening) {
                streams.add(f.get(30, TimeUnit.SECONDS));
            }
            int pooled = pool.totalConnections();
            streams.forEach(Http2StreamChannel::close);

            List<FutureTask<GoodClient>> burst = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                burst.add(background(() -> new GoodClient(server, server.clientTls, ELSEWHERE)));
            }
            List<GoodClient> clients = new ArrayList<>();
            for (FutureTask<GoodClient> c : burst) {
                clients.add(c.get(30, TimeUnit.SECONDS));
            }
            int tunnelled = 0;
            for (GoodClient c : clients) {
                tunnelled += c.tunnel(1_000) ? 1 : 0;
                c.close();
            }
            System.out.printf("legit at the default bounds (%d per identity, %d in all, %d handshakes per address):"
                    + " 1,000 concurrent tunnels on %d pooled connections; a burst of 200 connections from one"
                    + " address and identity, %d tunnelled; refusals: %s%n", bounds.maxConnectionsPerIdentity(),
                    bounds.maxConnections(), bounds.maxHandshakesPerSource(), pooled, tunnelled, server.handler.refusals);
            assertEquals(1_000, streams.size());
            assertTrue(pooled >= 10 && pooled <= 12, "100 streams per connection: " + pooled);
            assertEquals(200, tunnelled);
        }
        assertEquals(List.of(), server.handler.refusals, "no limit met by legitimate traffic");
        assertEquals(0, server.handler.counted.values().stream().mapToInt(AtomicLong::intValue).sum());
    }

    // ---- helpers -----------------------------------------------------------------------------------

    /** The attacker's connections all closed and given back: none counted, the fds as before. */
    private void awaitReleased(Footprint before) throws Exception {
        awaitTrue("connections gone, fds back to " + before.fds(),
                () -> server.admission.connections() == 0 && HboneTestServer.openFds() <= before.fds() + 4);
    }

    private static String code(Http2Error error) {
        return Long.toString(error.code());
    }

    static InetAddress address(String ip) {
        try {
            return InetAddress.getByName(ip);
        } catch (java.net.UnknownHostException e) {
            throw new IllegalArgumentException(e);
        }
    }

    static <T> FutureTask<T> background(Callable<T> work) {
        FutureTask<T> task = new FutureTask<>(work);
        Thread.ofVirtual().start(task);
        return task;
    }

    /** The highest value of something (by default this JVM's open file descriptors) seen every 20 ms. */
    static final class FdSampler implements AutoCloseable {
        private final AtomicLong max = new AtomicLong();
        private final AtomicBoolean running = new AtomicBoolean(true);
        private final Thread thread;

        FdSampler() {
            this(() -> {
                try {
                    return HboneTestServer.openFds();
                } catch (java.io.IOException e) {
                    return -1;
                }
            });
        }

        FdSampler(LongSupplier value) {
            thread = Thread.ofPlatform().daemon().start(() -> {
                while (running.get()) {
                    max.accumulateAndGet(value.getAsLong(), Math::max);
                    try {
                        Thread.sleep(20);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            });
        }

        long max() {
            return max.get();
        }

        @Override
        public void close() throws InterruptedException {
            running.set(false);
            thread.join(1_000);
        }
    }
}
