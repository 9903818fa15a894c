package dev.ambient.waypoint;

import static dev.ambient.waypoint.MeshFixtures.client;
import static dev.ambient.waypoint.MeshFixtures.key;
import static dev.ambient.waypoint.MeshFixtures.service;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.L7Operation;
import dev.ambient.proto.l7.L7Rule;
import dev.ambient.proto.l7.PathMatch;
import dev.ambient.proto.l7.RetryPolicy;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.RouteMatch;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.l7.WeightedBackend;
import dev.ambient.proto.workload.Action;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.StringMatch;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.waypoint.state.WaypointState;
import io.micrometer.prometheus.PrometheusConfig;
import io.micrometer.prometheus.PrometheusMeterRegistry;
import io.netty.buffer.PoolArenaMetric;
import io.netty.buffer.PooledByteBufAllocator;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Applications that stream, through a waypoint with L7 policy applied: bulk bodies both ways
 * (HTTP/1.1 and HTTP/2, the waypoint's memory printed), server-sent events and long polling,
 * WebSocket (HTTP/1.1 Upgrade and HTTP/2 extended CONNECT), gRPC's four kinds of call with
 * trailers and the statuses the waypoint gives itself, retries that replay a held body and none
 * that outgrew it, and the timeouts of streams. The applications and clients are not ours: Python's
 * standard library (HTTP/1.1 server), python3-websockets (WebSocket server and client), python-h2
 * (HTTP/2 server, gRPC and RFC 8441 clients), curl and nghttp.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class WaypointStreamingTest {

    static final String NS = "demo";
    static final int HBONE = 58008;
    static final int ENDPOINT_HBONE = 58108;
    static final int APP_HTTP = 58480;
    static final int APP_WS = 58481;
    static final int APP_H2 = 58485;
    /** Bytes of each bulk body; -Dwaypoint.test.bulk-bytes=1073741824 for 1 GiB. */
    static final long BULK = Long.getLong("waypoint.test.bulk-bytes", 256L << 20);
    static final SpiffeId CLIENT = new SpiffeId("cluster.local", NS, "frontend");
    static final SpiffeId WAYPOINT = new SpiffeId("cluster.local", NS, "waypoint");

    static final Service BULK_SVC = service("bulk", NS, "127.0.90.1", 80, APP_HTTP, "http");
    static final Service CHAT = service("chat", NS, "127.0.90.2", 80, APP_WS, "http");
    static final Service STREAMS = service("streams", NS, "127.0.90.3", 50051, APP_H2, "grpc");
    static final Service STREAMS_WS = service("streams-ws", NS, "127.0.90.4", 80, APP_H2, "http2");
    static final Service EMPTY = service("empty", NS, "127.0.90.5", 50051, APP_H2, "grpc");

    @TempDir
    static Path dir;
    static HboneTestBox box;
    static WaypointNode waypoint;
    static PrometheusMeterRegistry metrics;
    static final List<Process> apps = new ArrayList<>();
    static InetSocketAddress bulk;
    static InetSocketAddress chat;
    static InetSocketAddress streams;
    static InetSocketAddress streamsWs;
    static InetSocketAddress empty;

    @BeforeAll
    static void start() throws Exception {
        box = new HboneTestBox(dir);
        metrics = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        waypoint = box.waypoint("127.0.88.1", HBONE, ENDPOINT_HBONE, Map.of(
                "waypoint.http.request-timeout", "1s",
                "waypoint.http.stream-idle-timeout", "3s",
                "waypoint.http.retry-buffer-bytes", "262144"), metrics);

        Workload app = pod("app", "127.0.89.1", BULK_SVC, CHAT);
        Workload h2app = pod("h2app", "127.0.89.2", STREAMS, STREAMS_WS);
        ServiceRoutes bulkRoutes = ServiceRoutes.newBuilder().setServiceHostname(BULK_SVC.getHostname())
                .setServiceNamespace(NS)
                .addRoutes(Route.newBuilder().setName("retry-503").addMatches(prefix("/flaky/"))
                        .setRetry(RetryPolicy.newBuilder().setAttempts(2).setBackoffBaseMs(5))
                        .addBackends(backend(BULK_SVC)))
                .addRoutes(Route.newBuilder().setName("timed").addMatches(prefix("/timed/")).setTimeoutMs(1500)
                        .addBackends(backend(BULK_SVC)))
                .addRoutes(Route.newBuilder().setName("default").addMatches(prefix("/")).addBackends(backend(BULK_SVC)))
                .build();
        // Every service is under an ALLOW (only the frontend, only named paths) and a DENY, so
        // each stream below passed policy, and the refusals show which rule refused.
        List<L7Authorization> policies = List.of(
                allow("frontend-bulk", BULK_SVC, prefixMatch("/")),
                deny("no-private-bulk", BULK_SVC, "/private"),
                allow("frontend-chat", CHAT, exactMatch("/echo"), exactMatch("/private")),
                deny("no-private", CHAT, "/private"),
                allow("frontend-greeter", STREAMS, prefixMatch("/demo.Greeter/")),
                deny("no-secret", STREAMS, "/demo.Greeter/Secret"),
                allow("frontend-h2", STREAMS_WS, exactMatch("/echo"), exactMatch("/private"), prefixMatch("/upload"),
                        prefixMatch("/download")),
                deny("no-private-h2", STREAMS_WS, "/private"));
        waypoint.store().replace(WaypointState.of(List.of(app, h2app, client("frontend", NS, "frontend", "127.0.0.1")),
                List.of(BULK_SVC, CHAT, STREAMS, STREAMS_WS, EMPTY), List.of(bulkRoutes), policies));

        box.endpointServer(new InetSocketAddress("127.0.89.1", ENDPOINT_HBONE), new SpiffeId("cluster.local", NS, "app"));
        box.endpointServer(new InetSocketAddress("127.0.89.2", ENDPOINT_HBONE),
                new SpiffeId("cluster.local", NS, "h2app"));
        apps.add(python("http1-streaming-server.py", "127.0.89.1", Integer.toString(APP_HTTP), Integer.toString(APP_WS)));
        apps.add(python("h2c-streams-server.py", "127.0.89.2", Integer.toString(APP_H2)));

        bulk = tunnel(58301, BULK_SVC);
        chat = tunnel(58302, CHAT);
        streams = tunnel(58303, STREAMS);
        streamsWs = tunnel(58304, STREAMS_WS);
        empty = tunnel(58305, EMPTY);
    }

    static Workload pod(String name, String ip, Service... services) {
        Workload.Builder w = Workload.newBuilder().setUid("Kubernetes//Pod/demo/" + name).setName(name).setNamespace(NS)
                .setServiceAccount(name).addAddresses(MeshFixtures.ip(ip)).setWorkloadName(name).setCanonicalName(name)
                .setTrustDomain("cluster.local").setTunnelProtocol(TunnelProtocol.HBONE); // a mesh pod, as svc-xds says
        for (Service s : services) {
            Port p = s.getPorts(0);
            w.putServices(key(s), PortList.newBuilder().addPorts(Port.newBuilder().setServicePort(p.getServicePort())
                    .setTargetPort(p.getTargetPort())).build());
        }
        return w.build();
    }

    static RouteMatch prefix(String p) {
        return RouteMatch.newBuilder().setPath(PathMatch.newBuilder().setKind(PathMatch.Kind.PREFIX).setValue(p)).build();
    }

    static WeightedBackend backend(Service s) {
        return WeightedBackend.newBuilder().setService(key(s)).setPort(s.getPorts(0).getServicePort()).setWeight(1)
                .build();
    }

    static L7Authorization deny(String name, Service target, String path) {
        return L7Authorization.newBuilder().setName(name).setNamespace(NS).setAction(Action.DENY)
                .addTargets("Service/" + NS + "/" + target.getHostname())
                .addRules(L7Rule.newBuilder().addTo(L7Operation.newBuilder()
                        .addPaths(StringMatch.newBuilder().setExact(path)))).build();
    }

    static StringMatch exactMatch(String path) {
        return StringMatch.newBuilder().setExact(path).build();
    }

    static StringMatch prefixMatch(String path) {
        return StringMatch.newBuilder().setPrefix(path).build();
    }

    /** ALLOW the frontend's principal to these paths of {@code target}, and nothing else. */
    static L7Authorization allow(String name, Service target, StringMatch... paths) {
        return L7Authorization.newBuilder().setName(name).setNamespace(NS).setAction(Action.ALLOW)
                .addTargets("Service/" + NS + "/" + target.getHostname())
                .addRules(L7Rule.newBuilder()
                        .addFrom(dev.ambient.proto.l7.L7Source.newBuilder()
                                .addPrincipals(exactMatch(CLIENT.principal())))
                        .addTo(L7Operation.newBuilder().addAllPaths(List.of(paths)))).build();
    }

    static InetSocketAddress tunnel(int port, Service s) {
        InetSocketAddress vip = new InetSocketAddress(WaypointState.address(s.getAddresses(0).getAddress().toByteArray()),
                s.getPorts(0).getServicePort());
        return box.clientTunnel(new InetSocketAddress("127.0.88.1", port), CLIENT,
                new InetSocketAddress("127.0.88.1", HBONE), WAYPOINT, vip);
    }

    static Process python(String script, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("/usr/bin/python3", resource(script)));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String first = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)).readLine();
        assertEquals("listening", first, script + " did not start (Debian python3-h2 and python3-websockets)");
        return p;
    }

    static String resource(String name) throws Exception {
        return Path.of(WaypointStreamingTest.class.getResource("/" + name).toURI()).toString();
    }

    @AfterAll
    static void stop() throws Exception {
        apps.forEach(Process::destroyForcibly);
        if (box != null) {
            box.close();
        }
    }

    static String url(InetSocketAddress tunnel, String path) {
        return "http://" + tunnel.getHostString() + ":" + tunnel.getPort() + path;
    }

    /** Runs a command (a shell pipeline when it is one string) and returns what it printed. */
    static String run(int seconds, String... command) throws Exception {
        List<String> cmd = command.length == 1 ? List.of("/bin/bash", "-c", command[0]) : List.of(command);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(String.join(" ", cmd) + " did not finish in " + seconds + " s");
        }
        return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    }

    // ---------------------------------------------------------------- memory

    /** Netty's pooled buffers in use in this JVM (the waypoint's data plane and the test's own tunnels). */
    static long nettyBytes() {
        var m = PooledByteBufAllocator.DEFAULT.metric();
        return Stream.concat(m.directArenas().stream(), m.heapArenas().stream())
                .mapToLong(PoolArenaMetric::numActiveBytes).sum();
    }

    static long heapUsed() {
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    static long rss() throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        return -1;
    }

    /** Samples Netty's buffers in use every 10 ms while a transfer runs. */
    static final class MemoryWatch implements AutoCloseable {
        final long nettyBefore = nettyBytes();
        final long rssBefore;
        final AtomicLong nettyPeak = new AtomicLong(nettyBefore);
        final AtomicBoolean stop = new AtomicBoolean();
        final Thread sampler = Thread.ofPlatform().daemon().start(() -> {
            while (!stop.get()) {
                nettyPeak.accumulateAndGet(nettyBytes(), Math::max);
                try {
                    Thread.sleep(10);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });

        MemoryWatch() throws Exception {
            rssBefore = rss();
        }

        String report(String what, long bytes, long millis) throws Exception {
            return String.format("%s: %d MiB in %d ms (%.0f MiB/s); Netty buffers in use %d -> peak %d -> %d KiB;"
                    + " JVM RSS %d -> %d MiB, heap used now %d MiB", what, bytes >> 20, millis,
                    (bytes / 1048576.0) / (millis / 1000.0), nettyBefore >> 10, nettyPeak.get() >> 10,
                    nettyBytes() >> 10, rssBefore >> 20, rss() >> 20, heapUsed() >> 20);
        }

        @Override
        public void close() throws InterruptedException {
            stop.set(true);
            sampler.join();
        }
    }

    /** What the flow-control windows of the hops (4 MiB per HBONE stream, a few of them) may hold, with room. */
    static final long MAX_IN_FLIGHT = 64L << 20;

    // ---------------------------------------------------------------- bulk bodies

    @Test
    void bulkBodiesStreamBothWaysWithFlatMemory() throws Exception {
        List<String> report = new ArrayList<>();
        // HTTP/1.1, chunked upload from a pipe (curl -T - never knows the length).
        try (MemoryWatch m = new MemoryWatch()) {
            long t = System.nanoTime();
            String out = run(120, "head -c " + BULK + " /dev/zero | curl -sS -T - -X POST "
                    + url(bulk, "/upload-h1"));
            long ms = (System.nanoTime() - t) / 1_000_000;
            report.add(m.report("HTTP/1.1 upload (chunked)", BULK, ms) + " -> " + out);
            assertTrue(out.contains("\"bytes\": " + BULK), out);
            assertTrue(m.nettyPeak.get() - m.nettyBefore < MAX_IN_FLIGHT, report.getLast());
        }
        try (MemoryWatch m = new MemoryWatch()) {
            long t = System.nanoTime();
            String out = run(120, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                    url(bulk, "/download?bytes=" + BULK));
            long ms = (System.nanoTime() - t) / 1_000_000;
            report.add(m.report("HTTP/1.1 download (content-length)", BULK, ms) + " -> " + out);
            assertEquals("200 " + BULK, out);
            assertTrue(m.nettyPeak.get() - m.nettyBefore < MAX_IN_FLIGHT, report.getLast());
        }
        // HTTP/2 (h2c) both ways, to an HTTP/2 application.
        Path file = dir.resolve("bulk.bin");
        try (var raf = new java.io.RandomAccessFile(file.toFile(), "rw")) {
            raf.setLength(BULK);
        }
        try (MemoryWatch m = new MemoryWatch()) {
            long t = System.nanoTime();
            // -T streams the file (--data-binary would read it whole into curl's memory first).
            String out = run(120, "curl", "-sS", "--http2-prior-knowledge", "-T", file.toString(), "-X", "POST",
                    "-H", "content-type: application/octet-stream", url(streamsWs, "/upload"));
            long ms = (System.nanoTime() - t) / 1_000_000;
            report.add(m.report("HTTP/2 upload", BULK, ms) + " -> " + out);
            assertTrue(out.contains("\"bytes\": " + BULK), out);
            assertTrue(m.nettyPeak.get() - m.nettyBefore < MAX_IN_FLIGHT, report.getLast());
        }
        Files.delete(file);
        try (MemoryWatch m = new MemoryWatch()) {
            long t = System.nanoTime();
            String out = run(120, "nghttp -n -s " + url(streamsWs, "/download?bytes=" + BULK)
                    + " | grep -A2 'Request timing' | tail -1; curl -sS --http2-prior-knowledge -o /dev/null"
                    + " -w '%{http_code} %{size_download}' '" + url(streamsWs, "/download?bytes=" + (BULK / 4)) + "'");
            long ms = (System.nanoTime() - t) / 1_000_000;
            report.add(m.report("HTTP/2 download (nghttp, then curl of a quarter)", BULK + BULK / 4, ms) + " -> "
                    + out.replace('\n', ' '));
            assertTrue(out.endsWith("200 " + BULK / 4), out);
            assertTrue(m.nettyPeak.get() - m.nettyBefore < MAX_IN_FLIGHT, report.getLast());
        }
        report.forEach(System.out::println);
        // The same service under its DENY, the path as the application would get it after normalization.
        String denied = run(30, "curl", "-sS", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}",
                url(bulk, "/upload-h1/../private"));
        assertEquals("403", denied, "policy judged /private, which the application would have got");
        assertEquals(0, waypoint.registry().get("waypoint_buffered_body_bytes").gauge().value(),
                "nothing held: these routes do not retry");
    }

    /**
     * Many h2c uploads in a row, each paced by the application: each pause and resume of reading
     * must give the client its window back. Before {@code StreamReading} flushed on resuming, about
     * one upload in 20 stalled after 3 x 64 KiB and was cut by the request timeout (curl: stream
     * not closed cleanly, CANCEL); a probabilistic test, it fails most runs on that bug.
     */
    @Test
    void h2cUploadsNeverStallOnFlowControl() throws Exception {
        Path file = dir.resolve("repeat.bin");
        int size = Integer.getInteger("waypoint.test.repeat-bytes", 4 << 20);
        int runs = Integer.getInteger("waypoint.test.repeat-runs", 30);
        try (var raf = new java.io.RandomAccessFile(file.toFile(), "rw")) {
            raf.setLength(size);
        }
        List<String> stalled = new ArrayList<>();
        long t = System.nanoTime();
        for (int i = 0; i < runs; i++) {
            String out = run(60, "curl", "-sS", "--http2-prior-knowledge", "-T", file.toString(), "-X", "POST",
                    url(streamsWs, "/upload"));
            if (!out.contains("\"bytes\": " + size)) {
                stalled.add("upload " + i + ": " + out);
            }
        }
        System.out.printf("%d h2c uploads of %d bytes in %d ms, stalled: %s%n", runs, size,
                (System.nanoTime() - t) / 1_000_000, stalled);
        assertEquals(List.of(), stalled);
        Files.delete(file);
    }

    // ---------------------------------------------------------------- events and long polling

    /** Reads a command's output line by line as it comes; returns each line with the seconds it came at. */
    static List<String> timedLines(int seconds, String... command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        long start = System.nanoTime();
        List<String> lines = new ArrayList<>();
        Thread reader = Thread.ofVirtual().start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null;) {
                    if (!line.isBlank()) {
                        synchronized (lines) {
                            lines.add(String.format("%.2f %s", (System.nanoTime() - start) / 1e9, line));
                        }
                    }
                }
            } catch (java.io.IOException ignored) {
                // the process ended
            }
        });
        assertTrue(p.waitFor(seconds, TimeUnit.SECONDS), String.join(" ", command) + " did not end");
        reader.join(5_000);
        synchronized (lines) {
            lines.add(String.format("%.2f exit %d", (System.nanoTime() - start) / 1e9, p.exitValue()));
            return List.copyOf(lines);
        }
    }

    static double at(String timedLine) {
        return Double.parseDouble(timedLine.substring(0, timedLine.indexOf(' ')));
    }

    @Test
    void serverSentEventsArriveAsTheyAreProduced() throws Exception {
        for (String version : List.of("--http1.1", "--http2-prior-knowledge")) {
            List<String> lines = timedLines(30, "curl", "-sSN", version, url(bulk, "/events?n=3&gap=1"));
            System.out.println("server-sent events, curl " + version + ": " + lines);
            assertEquals(4, lines.size(), lines.toString());
            assertTrue(lines.get(0).contains("data: 1") && lines.get(2).contains("data: 3"), lines.toString());
            assertTrue(lines.getLast().endsWith("exit 0"), lines.toString());
            assertTrue(at(lines.get(2)) - at(lines.get(0)) >= 1.5,
                    "the first event came as it was sent, not with the last: " + lines);
        }
        // Long polling: an answer that takes its time, within the stream idle timeout.
        String polled = run(20, "curl", "-sS", "-w", " %{http_code} %{time_total}", url(bulk, "/poll?wait=2"));
        System.out.println("long poll (2 s): " + polled);
        assertTrue(polled.startsWith("polled 200"), polled);
    }

    @Test
    void streamsHaveTheirOwnTimeouts() throws Exception {
        // An event stream longer than the stream idle timeout (3 s) lives on while events come.
        List<String> longLived = timedLines(30, "curl", "-sSN", url(bulk, "/events?n=5&gap=1"));
        System.out.println("5 events 1 s apart, stream idle timeout 3 s: " + longLived);
        assertEquals(6, longLived.size(), longLived.toString());
        assertTrue(longLived.getLast().endsWith("exit 0"), longLived.toString());
        // One that goes silent is cut after the idle timeout, not after the application's 10 s.
        List<String> silent = timedLines(30, "curl", "-sSN", url(bulk, "/events-then-silence"));
        System.out.println("one event then silence: " + silent);
        assertTrue(silent.getFirst().contains("data: 1"), silent.toString());
        assertTrue(at(silent.getLast()) >= 2.5 && at(silent.getLast()) < 8, silent.toString());
        assertFalse(silent.getLast().endsWith("exit 0"), "the client sees the stream cut: " + silent);
        // A route timeout covers the whole response (Envoy's): a stream on such a route is cut at it.
        List<String> timed = timedLines(30, "curl", "-sSN", url(bulk, "/timed/events?n=5&gap=1"));
        System.out.println("5 events 1 s apart on a route with a 1.5 s timeout: " + timed);
        assertTrue(timed.getFirst().contains("data: 1"), timed.toString());
        assertTrue(timed.stream().noneMatch(l -> l.contains("data: 4")), timed.toString());
        assertFalse(timed.getLast().endsWith("exit 0"), timed.toString());
        // An upload that keeps coming is not cut by the request timeout (1 s) however long it takes.
        try (RawClient c = new RawClient(bulk)) {
            c.send("POST /upload-slow HTTP/1.1\r\nhost: bulk\r\ntransfer-encoding: chunked\r\n\r\n");
            for (int i = 0; i < 10; i++) {
                c.send("400\r\n" + "s".repeat(1024) + "\r\n");
                Thread.sleep(300);
            }
            c.send("0\r\n\r\n");
            String r = c.response();
            System.out.println("10 KiB over 3 s, a piece every 300 ms (request timeout 1 s): " + r);
            assertTrue(r.startsWith("HTTP/1.1 200") && r.contains("\"bytes\": 10240"), r);
        }
        // One that stalls is: 408.
        try (RawClient c = new RawClient(bulk)) {
            c.send("POST /upload-stalled HTTP/1.1\r\nhost: bulk\r\ncontent-length: 100000\r\n\r\n" + "x".repeat(1000));
            long t = System.nanoTime();
            int status = c.status();
            System.out.printf("1,000 of 100,000 bytes, then nothing: %d after %d ms%n", status,
                    (System.nanoTime() - t) / 1_000_000);
            assertEquals(408, status);
        }
    }

    // ---------------------------------------------------------------- retries and the held body

    @Test
    void retriesReplayAHeldBodyButNeverOneThatOutgrewIt() throws Exception {
        // The application answers 503 to the first request for a path, 200 to the next; the route
        // retries 503. A body within the retry buffer (256 KiB here) is sent again whole (PUT: an
        // idempotent method; a POST whose body reached the application is never sent twice).
        Path small = dir.resolve("small.bin");
        byte[] bytes = new byte[100_000];
        new java.util.Random(3).nextBytes(bytes);
        Files.write(small, bytes);
        String sha = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(bytes));
        String retried = run(30, "curl", "-sS", "-w", " %{http_code}", "-X", "PUT", "--data-binary", "@" + small,
                url(bulk, "/flaky/small"));
        System.out.println("100,000 bytes, first attempt 503: " + retried);
        assertTrue(retried.endsWith(" 200") && retried.contains("\"attempt\": 2") && retried.contains(sha), retried);
        String post = run(30, "curl", "-sS", "-w", " %{http_code}", "--data-binary", "@" + small,
                url(bulk, "/flaky/small-post"));
        assertTrue(post.endsWith(" 503") && post.contains("\"attempt\": 1"), "a POST is not sent twice: " + post);
        // A body past the retry buffer has streamed on: it cannot be sent twice, so the 503 stands.
        String notRetried = run(30, "head -c 1000000 /dev/zero | curl -sS -w ' %{http_code}' -T - "
                + url(bulk, "/flaky/big"));
        System.out.println("1,000,000 bytes (retry buffer 262,144), first attempt 503: " + notRetried);
        assertTrue(notRetried.endsWith(" 503") && notRetried.contains("\"attempt\": 1"), notRetried);
        // The same over HTTP/2.
        String h2 = run(30, "curl", "-sS", "--http2-prior-knowledge", "-w", " %{http_code}", "-X", "PUT",
                "--data-binary", "@" + small, url(bulk, "/flaky/small-h2"));
        assertTrue(h2.endsWith(" 200") && h2.contains("\"attempt\": 2") && h2.contains(sha), h2);
        assertEquals(0, waypoint.registry().get("waypoint_buffered_body_bytes").gauge().value(), "all given back");
    }

    // ---------------------------------------------------------------- WebSocket

    @Test
    void webSocketsAreTunnelledAfterPolicy() throws Exception {
        String script = resource("websocket-client.py");
        String h1 = run(30, "/usr/bin/python3", script, "h1", chat.getHostString(), Integer.toString(chat.getPort()), "/echo");
        String h1Denied = run(30, "/usr/bin/python3", script, "h1", chat.getHostString(),
                Integer.toString(chat.getPort()), "/private");
        String h2 = run(30, "/usr/bin/python3", script, "h2", chat.getHostString(), Integer.toString(chat.getPort()), "/echo");
        String h2Denied = run(30, "/usr/bin/python3", script, "h2", chat.getHostString(),
                Integer.toString(chat.getPort()), "/private");
        String toH2 = run(30, "/usr/bin/python3", script, "h1", streamsWs.getHostString(),
                Integer.toString(streamsWs.getPort()), "/echo");
        String toH2Denied = run(30, "/usr/bin/python3", script, "h1", streamsWs.getHostString(),
                Integer.toString(streamsWs.getPort()), "/private");
        // Policy judges the path the application gets: dot segments and doubled slashes are
        // normalized before the DENY is evaluated; a path the ALLOW does not name is refused too.
        String h1Dotted = run(30, "/usr/bin/python3", script, "h1", chat.getHostString(),
                Integer.toString(chat.getPort()), "/echo/../private");
        String h2Doubled = run(30, "/usr/bin/python3", script, "h2", chat.getHostString(),
                Integer.toString(chat.getPort()), "//private");
        String h1NotAllowed = run(30, "/usr/bin/python3", script, "h1", chat.getHostString(),
                Integer.toString(chat.getPort()), "/other");
        System.out.println("WebSocket /echo/../private (h1): " + h1Dotted + "; //private (h2): " + h2Doubled
                + "; /other, not in the ALLOW (h1): " + h1NotAllowed);
        assertEquals("refused 403", h1Dotted);
        assertEquals("refused 403", h2Doubled);
        assertEquals("refused 403", h1NotAllowed);
        System.out.println("WebSocket, HTTP/1.1 Upgrade -> HTTP/1.1 application: " + h1 + "; /private: " + h1Denied);
        System.out.println("WebSocket, HTTP/2 extended CONNECT -> HTTP/1.1 application: " + h2 + "; /private: "
                + h2Denied);
        System.out.println("WebSocket, HTTP/1.1 Upgrade -> HTTP/2 application (extended CONNECT): " + toH2
                + "; /private: " + toH2Denied);
        assertTrue(h1.startsWith("echoed 3"), h1);
        assertEquals("refused 403", h1Denied);
        assertTrue(h2.startsWith("echoed 3"), h2);
        assertEquals("refused 403", h2Denied);
        assertTrue(toH2.startsWith("echoed 3"), toH2);
        assertEquals("refused 403", toH2Denied);
        String scrape = metrics.scrape();
        assertTrue(scrape.lines().anyMatch(l -> l.startsWith("istio_requests_total{") && l.contains("response_code=\"101\"")
                && l.contains("destination_service_name=\"chat\"")), "upgrades are counted");
    }

    // ---------------------------------------------------------------- gRPC

    /** What the python-h2 gRPC client said: its JSON line, read with a pattern per field (no JSON library here). */
    record GrpcResult(String json) {
        String get(String field) {
            Matcher m = Pattern.compile("\"" + field + "\": (\"([^\"]*)\"|true|false|null|-?[0-9.]+)").matcher(json);
            return !m.find() ? null : m.group(2) != null ? m.group(2) : m.group(1);
        }

        List<String> list(String field) {
            Matcher m = Pattern.compile("\"" + field + "\": \\[([^\\]]*)\\]").matcher(json);
            if (!m.find() || m.group(1).isBlank()) {
                return List.of();
            }
            return Stream.of(m.group(1).split(", ")).map(v -> v.replace("\"", "")).toList();
        }

        List<Double> times() {
            return list("times").stream().map(Double::parseDouble).toList();
        }
    }

    static GrpcResult grpc(InetSocketAddress tunnel, String path, String kind) throws Exception {
        String out = run(30, "/usr/bin/python3", resource("h2c-grpc-client.py"), tunnel.getHostString(),
                Integer.toString(tunnel.getPort()), path, kind);
        System.out.println("gRPC " + kind + " " + path + ": " + out);
        return new GrpcResult(out);
    }

    @Test
    void grpcCallsOfEveryKindStreamWithTheirTrailers() throws Exception {
        GrpcResult unary = grpc(streams, "/demo.Greeter/SayHello", "unary");
        assertEquals("200", unary.get("status"));
        assertEquals("0", unary.get("grpc_status"));
        assertEquals(List.of("hello"), unary.list("messages"));

        GrpcResult server = grpc(streams, "/demo.Greeter/ServerStream", "server-stream");
        assertEquals("0", server.get("grpc_status"));
        assertEquals(3, server.list("messages").size());
        List<Double> t = server.times();
        assertTrue(t.get(2) - t.get(0) >= 0.8, "each message as the server sent it (0.5 s apart): " + t);

        GrpcResult clientStream = grpc(streams, "/demo.Greeter/ClientStream", "client-stream");
        assertEquals("0", clientStream.get("grpc_status"));
        assertEquals(List.of("count=3"), clientStream.list("messages"));

        // The client sends the next message only when the echo of the last one came: this only
        // finishes if both directions stream.
        GrpcResult bidi = grpc(streams, "/demo.Greeter/Bidi", "bidi");
        assertEquals("0", bidi.get("grpc_status"));
        assertEquals(List.of("ping 1", "ping 2", "ping 3"), bidi.list("messages"));

        GrpcResult notFound = grpc(streams, "/demo.Greeter/NotFound", "unary");
        assertEquals("5", notFound.get("grpc_status"));
        assertEquals("true", notFound.get("trailers_only"));

        // What the waypoint says itself, a gRPC client reads as a status (trailers-only, HTTP 200).
        GrpcResult denied = grpc(streams, "/demo.Greeter/Secret", "unary");
        assertEquals("200", denied.get("status"));
        assertEquals("7", denied.get("grpc_status"), "PERMISSION_DENIED");
        assertEquals("true", denied.get("trailers_only"));
        assertEquals("RBAC: access denied", denied.get("grpc_message"));
        GrpcResult notAllowed = grpc(streams, "/demo.Other/SayHello", "unary");
        assertEquals("7", notAllowed.get("grpc_status"), "a service outside the ALLOW: PERMISSION_DENIED");
        assertEquals("true", notAllowed.get("trailers_only"));
        GrpcResult unavailable = grpc(empty, "/demo.Greeter/SayHello", "unary");
        assertEquals("14", unavailable.get("grpc_status"), "UNAVAILABLE");
        assertEquals("true", unavailable.get("trailers_only"));

        String scrape = metrics.scrape();
        for (String status : List.of("0", "5", "7", "14")) {
            assertTrue(scrape.lines().anyMatch(l -> l.startsWith("istio_requests_total{")
                    && l.contains("request_protocol=\"grpc\"") && l.contains("grpc_response_status=\"" + status + "\"")),
                    "grpc_response_status " + status + " in\n" + grpcLines(scrape));
        }
        System.out.println(grpcLines(scrape));
    }

    static String grpcLines(String scrape) {
        Matcher m = Pattern.compile("^istio_requests_total\\{.*request_protocol=\"grpc\".*$", Pattern.MULTILINE)
                .matcher(scrape);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            out.append(m.group().replaceAll("source_[a-z_]+=\"[^\"]*\",?", "")).append('\n');
        }
        return out.toString();
    }

}
