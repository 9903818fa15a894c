package dev.ambient.waypoint;

import static dev.ambient.waypoint.MeshFixtures.client;
import static dev.ambient.waypoint.MeshFixtures.key;
import static dev.ambient.waypoint.MeshFixtures.pod;
import static dev.ambient.waypoint.MeshFixtures.service;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.workload.Service;
import dev.ambient.waypoint.state.WaypointState;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two waypoint instances serve one service; one drains (as on SIGTERM) while clients keep sending
 * requests. Clients pick a ready waypoint per connection, as ztunnels do from the waypoint
 * service's endpoints; requests already sent to the draining one finish. No request is lost.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class WaypointDrainTest {

    @TempDir
    static Path dir;

    @Test
    void oneOfTwoWaypointsDrainsWithoutLosingARequest() throws Exception {
        try (HboneTestBox box = new HboneTestBox(dir)) {
            Service web = service("web", "demo", "127.0.84.10", 80, 58380);
            WaypointState state = WaypointState.of(
                    List.of(pod("web-1", "demo", "web", "127.0.84.1", key(web), 80, 58380),
                            client("sleep", "demo", "sleep", "127.0.0.1")),
                    List.of(web), List.of(), List.of());
            SimpleMeterRegistry metricsA = new SimpleMeterRegistry();
            SimpleMeterRegistry metricsB = new SimpleMeterRegistry();
            WaypointNode a = box.waypoint("127.0.83.1", 58008, 58108, Map.of(), metricsA);
            WaypointNode b = box.waypoint("127.0.83.2", 58008, 58108, Map.of(), metricsB);
            a.store().replace(state);
            b.store().replace(state);
            box.endpointServer(new InetSocketAddress("127.0.84.1", 58108), new SpiffeId("cluster.local", "demo", "web"));
            // Slow enough that requests are in flight on the waypoint when it starts draining.
            box.backend(new InetSocketAddress("127.0.84.1", 58380), ex -> new HboneTestBox.Reply(200, "web", 40));

            List<WaypointNode> waypoints = List.of(a, b);
            AtomicInteger next = new AtomicInteger();
            InetSocketAddress tunnel = box.clientTunnel(new InetSocketAddress("127.0.83.9", 58201),
                    new SpiffeId("cluster.local", "demo", "sleep"), () -> {
                        List<WaypointNode> ready = waypoints.stream().filter(w -> w.notReady().isEmpty()).toList();
                        WaypointNode w = ready.get(Math.floorMod(next.getAndIncrement(), ready.size()));
                        return w.hboneAddress();
                    }, new SpiffeId("cluster.local", "demo", "waypoint"), new InetSocketAddress("127.0.84.10", 80));

            AtomicBoolean stop = new AtomicBoolean();
            AtomicLong drainStart = new AtomicLong();
            AtomicInteger ok = new AtomicInteger();
            ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
            List<Thread> clients = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                clients.add(Thread.ofVirtual().start(() -> {
                    while (!stop.get()) {
                        try {
                            String response = request(tunnel);
                            if (response.startsWith("HTTP/1.1 200") && response.endsWith("web")) {
                                ok.incrementAndGet();
                            } else {
                                failures.add(response);
                            }
                        } catch (Exception e) {
                            long d = drainStart.get();
                            failures.add(e + (d == 0 ? " before the drain"
                                    : " " + (System.nanoTime() - d) / 1_000_000 + " ms into the drain"));
                        }
                    }
                }));
            }
            Thread.sleep(1_000);
            int inFlightAtDrain = a.activeRequests();
            long t0 = System.nanoTime();
            drainStart.set(t0);
            boolean drained = a.drain(Duration.ofMillis(500), Duration.ofSeconds(10));
            long drainMs = (System.nanoTime() - t0) / 1_000_000;
            a.close();
            double servedByA = requests(metricsA);
            int okAtClose = ok.get();
            Thread.sleep(1_000);
            stop.set(true);
            for (Thread t : clients) {
                t.join(10_000);
            }
            assertTrue(drained, "drain finished in time");
            assertTrue(drainMs >= 500, "kept serving for the minimum drain time: " + drainMs);
            assertEquals(List.of(), List.copyOf(failures), "no request lost");
            assertTrue(servedByA >= 5, "A served before draining: " + servedByA);
            assertTrue(ok.get() > okAtClose + 10, "B kept serving after A closed: " + (ok.get() - okAtClose));
            assertTrue(requests(metricsB) > 10);
            System.out.printf("drain: %d in flight at SIGTERM, drained in %d ms; %d requests ok, A served %.0f%n",
                    inFlightAtDrain, drainMs, ok.get(), servedByA);
        }
    }

    @Test
    void aDrainTellsH2cClientsInsideTheirTunnelsToGoAway() throws Exception {
        try (HboneTestBox box = new HboneTestBox(dir.resolve("h2c"))) {
            // Declared http: the backend (the JDK's server) speaks HTTP/1.1 whatever the client speaks.
            Service web = service("web", "demo", "127.0.85.10", 80, 58381, "http");
            WaypointState state = WaypointState.of(
                    List.of(pod("web-1", "demo", "web", "127.0.85.1", key(web), 80, 58381),
                            client("sleep", "demo", "sleep", "127.0.0.1")),
                    List.of(web), List.of(), List.of());
            WaypointNode w = box.waypoint("127.0.83.3", 58008, 58108, Map.of(), new SimpleMeterRegistry());
            w.store().replace(state);
            box.endpointServer(new InetSocketAddress("127.0.85.1", 58108), new SpiffeId("cluster.local", "demo", "web"));
            box.backend(new InetSocketAddress("127.0.85.1", 58381), ex -> HboneTestBox.Reply.ok("web"));
            InetSocketAddress tunnel = box.clientTunnel(new InetSocketAddress("127.0.83.9", 58202),
                    new SpiffeId("cluster.local", "demo", "sleep"), w.hboneAddress(),
                    new SpiffeId("cluster.local", "demo", "waypoint"), new InetSocketAddress("127.0.85.10", 80));
            // python-h2 (Debian python3-h2) as the client: one h2c connection kept open. Its request
            // is stream 1, as most clients' first request is (nghttp's is not).
            Path script = Path.of(WaypointDrainTest.class.getResource("/h2c-goaway-client.py").toURI());
            Process client = new ProcessBuilder("/usr/bin/python3", script.toString(), tunnel.getHostString(),
                    Integer.toString(tunnel.getPort()), "/").redirectErrorStream(true).start();
            try {
                var out = new java.io.BufferedReader(new java.io.InputStreamReader(client.getInputStream(),
                        StandardCharsets.UTF_8));
                String first = out.readLine();
                if (!"response 200".equals(first)) {
                    client.waitFor(5, TimeUnit.SECONDS);
                    StringBuilder rest = new StringBuilder(first);
                    for (String l; (l = out.readLine()) != null;) {
                        rest.append('\n').append(l);
                    }
                    throw new AssertionError("python-h2 client: " + rest);
                }
                assertTrue(w.drain(Duration.ofMillis(200), Duration.ofSeconds(10)), "drained");
                assertEquals("goaway error=0", out.readLine(), "the h2c client was told to go away, without error");
                assertTrue(client.waitFor(10, TimeUnit.SECONDS));
            } finally {
                client.destroyForcibly();
            }
        }
    }

    private static double requests(SimpleMeterRegistry r) {
        return r.find("istio_requests_total").counters().stream().mapToDouble(c -> c.count()).sum();
    }

    /** One request on a new connection, as a client that does not reuse connections sends it. */
    private static String request(InetSocketAddress tunnel) throws Exception {
        try (Socket s = new Socket()) {
            s.setSoTimeout(10_000);
            s.connect(tunnel, 5_000);
            s.getOutputStream().write("GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII));
            InputStream in = s.getInputStream();
            return new String(in.readAllBytes(), StandardCharsets.US_ASCII);
        }
    }
}
