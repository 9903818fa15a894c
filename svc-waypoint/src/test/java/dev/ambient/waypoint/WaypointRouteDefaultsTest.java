package dev.ambient.waypoint;

import static dev.ambient.waypoint.MeshFixtures.client;
import static dev.ambient.waypoint.MeshFixtures.key;
import static dev.ambient.waypoint.MeshFixtures.pod;
import static dev.ambient.waypoint.MeshFixtures.service;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.l7.Mirror;
import dev.ambient.proto.l7.PathMatch;
import dev.ambient.proto.l7.PathRewrite;
import dev.ambient.proto.l7.PrefixRewrite;
import dev.ambient.proto.l7.RetryPolicy;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.RouteMatch;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.l7.UrlRewrite;
import dev.ambient.proto.l7.WeightedBackend;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.waypoint.state.WaypointState;
import io.micrometer.prometheus.PrometheusConfig;
import io.micrometer.prometheus.PrometheusMeterRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Handler;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the waypoint does when a route says little, against real applications that fail in real
 * ways, as Istio 1.24+ does it: the default retry policy (connect failures and 503 retried on
 * another endpoint; resets not; a non-idempotent request whose body reached the endpoint never
 * sent twice), a per-try timeout that is not retried under an HTTPRoute's conditions, no outlier
 * ejection without a DestinationRule. RequestMirror copies (the copy as the application gets it,
 * the body bound, a slow, a hanging and an unreachable mirror never delaying the primary, the
 * in-flight bound). Idle WebSocket and TCP tunnels closed, active ones kept. The access log's path
 * as the client sent it.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class WaypointRouteDefaultsTest {

    static final String NS = "dflt";
    static final int HBONE = 58008;
    static final int ENDPOINT_HBONE = 58108;
    static final int APP = 58680;
    static final int WS = 58681;
    static final int TCP_APP = 58683;
    static final SpiffeId SOURCE = new SpiffeId("cluster.local", NS, "client");
    static final SpiffeId WAYPOINT = new SpiffeId("cluster.local", "demo", "waypoint"); // HboneTestBox's Gateway

    static final Service CONN = service("conn", NS, "127.0.116.10", 80, APP, "http");
    static final Service FLAKY = service("flaky", NS, "127.0.116.11", 80, APP, "http");
    static final Service RESET = service("reset", NS, "127.0.116.12", 80, APP, "http");
    static final Service SLOW = service("slow", NS, "127.0.116.13", 80, APP, "http");
    static final Service OUT = service("out", NS, "127.0.116.14", 80, APP, "http");
    static final Service H2 = service("h2", NS, "127.0.116.15", 80, 58684, "http2");
    static final Service WEB = service("web", NS, "127.0.116.20", 80, APP, "http");
    static final Service REC = service("mirror-rec", NS, "127.0.116.21", 80, APP, "http");
    static final Service MSLOW = service("mirror-slow", NS, "127.0.116.22", 80, APP, "http");
    static final Service MHANG = service("mirror-hang", NS, "127.0.116.23", 80, APP, "http");
    static final Service MDOWN = service("mirror-down", NS, "127.0.116.24", 80, APP, "http");
    static final Service CHAT = service("chat", NS, "127.0.116.30", 80, WS, "http");
    static final Service ECHO = service("echo", NS, "127.0.116.31", 9000, TCP_APP, "tcp");

    @TempDir
    static Path dir;
    static HboneTestBox box;
    static WaypointNode waypoint;
    static PrometheusMeterRegistry registry;
    static final List<AutoCloseable> apps = new ArrayList<>();
    static final List<Process> processes = new ArrayList<>();
    static final List<String> accessLog = new CopyOnWriteArrayList<>();
    static final Handler capture = new LogCapture(accessLog);
    /** Requests each application received, by "app path". */
    static final Map<String, AtomicInteger> seen = new ConcurrentHashMap<>();
    /** What the mirror's application received: "METHOD target host bytes sha256". */
    static final List<String> mirrored = Collections.synchronizedList(new ArrayList<>());
    static final Map<String, InetSocketAddress> tunnels = new ConcurrentHashMap<>();
    static final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();

    static Route.Builder route(String name, String prefix, Service to) {
        return Route.newBuilder().setName(name).addMatches(RouteMatch.newBuilder().setPath(PathMatch.newBuilder()
                .setKind(PathMatch.Kind.PREFIX).setValue(prefix))).addBackends(WeightedBackend.newBuilder()
                .setService(key(to)).setPort(80).setWeight(1));
    }

    static ServiceRoutes table(Service s, Route.Builder... routes) {
        ServiceRoutes.Builder b = ServiceRoutes.newBuilder().setServiceHostname(s.getHostname()).setServiceNamespace(NS);
        for (Route.Builder r : routes) {
            b.addRoutes(r);
        }
        return b.build();
    }

    static Mirror mirror(Service to, double percent) {
        return Mirror.newBuilder().setService(key(to)).setPort(80).setPercent(percent).build();
    }

    @BeforeAll
    static void start() throws Exception {
        java.util.logging.Logger.getLogger("dev.ambient.waypoint.access").addHandler(capture);
        box = new HboneTestBox(dir);
        registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        waypoint = box.waypoint("127.0.116.1", HBONE, ENDPOINT_HBONE, Map.of(
                "waypoint.http.stream-idle-timeout", "2s",
                "waypoint.tcp-idle-timeout", "2s",
                "waypoint.http.mirror-timeout", "2s",
                "waypoint.http.max-mirrors-in-flight", "4",
                "waypoint.http.retry-buffer-bytes", "262144"), registry);

        List<Workload> workloads = new ArrayList<>(List.of(client("client", NS, "client", "127.0.0.1")));
        record Pod(String name, String ip, Service service, int port) {
        }
        List<Pod> pods = List.of(new Pod("conn-dead", "127.0.117.1", CONN, APP), new Pod("conn-ok", "127.0.117.2", CONN, APP),
                new Pod("flaky", "127.0.117.3", FLAKY, APP), new Pod("reset", "127.0.117.4", RESET, APP),
                new Pod("slow", "127.0.117.5", SLOW, APP), new Pod("out-a", "127.0.117.6", OUT, APP),
                new Pod("out-b", "127.0.117.7", OUT, APP), new Pod("web", "127.0.117.10", WEB, APP),
                new Pod("mirror-rec", "127.0.117.11", REC, APP), new Pod("mirror-slow", "127.0.117.12", MSLOW, APP),
                new Pod("mirror-hang", "127.0.117.13", MHANG, APP), new Pod("mirror-down", "127.0.117.14", MDOWN, APP),
                new Pod("h2", "127.0.117.22", H2, 58684), new Pod("chat", "127.0.117.20", CHAT, WS), new Pod("echo", "127.0.117.21", ECHO, TCP_APP));
        for (Pod p : pods) {
            workloads.add(pod(p.name(), NS, p.name(), p.ip(), key(p.service()), p.service().getPorts(0).getServicePort(),
                    p.port()));
            // Unreachable on purpose: nothing listens on their HBONE port (connect refused).
            if (!p.name().equals("conn-dead") && !p.name().equals("mirror-down")) {
                box.endpointServer(new InetSocketAddress(p.ip(), ENDPOINT_HBONE), new SpiffeId("cluster.local", NS,
                        p.name()));
            }
        }
        RetryPolicy fiveXx = RetryPolicy.newBuilder().setAttempts(2).addRetryOn("5xx").setBackoffBaseMs(5).build();
        // What svc-xds makes of an HTTPRoute rule with `retry: {}` and `timeouts: {backendRequest: 300ms}`.
        RetryPolicy asConverted = RetryPolicy.newBuilder().setAttempts(2).addRetryOn("connect-failure")
                .addRetryOn("refused-stream").addRetryOn("unavailable").addRetryOn("cancelled").setPerTryTimeoutMs(300)
                .build();
        List<ServiceRoutes> tables = List.of(
                table(RESET, route("reset-5xx", "/5xx", RESET).setRetry(fiveXx), route("reset-default", "/", RESET)),
                table(SLOW, route("slow", "/", SLOW).setRetry(asConverted)),
                table(WEB, route("copy", "/copy", WEB).addMirrors(mirror(REC, 100)),
                        route("never", "/never", WEB).addMirrors(mirror(REC, 0)),
                        route("to-slow", "/slow", WEB).addMirrors(mirror(MSLOW, 100)),
                        route("to-hang", "/hang", WEB).addMirrors(mirror(MHANG, 100)),
                        route("to-down", "/down", WEB).addMirrors(mirror(MDOWN, 100)),
                        route("old", "/old", WEB).setRewrite(UrlRewrite.newBuilder().setPath(PathRewrite.newBuilder()
                                .setPrefix(PrefixRewrite.newBuilder().setMatchedPrefix("/old").setReplacement("/new")))),
                        route("plain", "/", WEB)));
        waypoint.store().replace(WaypointState.of(workloads,
                List.of(CONN, FLAKY, RESET, SLOW, OUT, H2, WEB, REC, MSLOW, MHANG, MDOWN, CHAT, ECHO), tables,
                List.of()));

        app("conn-ok", "127.0.117.2", ex -> 200);
        Map<String, AtomicInteger> flakyTries = new ConcurrentHashMap<>();
        app("flaky", "127.0.117.3", ex -> flakyTries.computeIfAbsent(ex.getRequestURI().getPath(),
                k -> new AtomicInteger()).incrementAndGet() == 1 ? 503 : 200);
        app("slow", "127.0.117.5", ex -> {
            sleep(3_000);
            return 200;
        });
        app("out-a", "127.0.117.6", ex -> 503);
        app("out-b", "127.0.117.7", ex -> 200);
        app("web", "127.0.117.10", ex -> 200);
        app("mirror-rec", "127.0.117.11", ex -> 200);
        app("mirror-slow", "127.0.117.12", ex -> {
            sleep(3_000);
            return 200;
        });
        apps.add(new ResettingApp(new InetSocketAddress("127.0.117.4", APP)));
        apps.add(new HangingApp(new InetSocketAddress("127.0.117.13", APP)));
        apps.add(new EchoServer(new InetSocketAddress("127.0.117.21", TCP_APP)));
        Process chat = new ProcessBuilder("/usr/bin/python3", resource("http1-streaming-server.py"), "127.0.117.20",
                "58682", Integer.toString(WS)).redirectErrorStream(true).start();
        processes.add(chat);
        assertEquals("listening", new java.io.BufferedReader(new java.io.InputStreamReader(chat.getInputStream(),
                StandardCharsets.UTF_8)).readLine(), "python3-websockets server did not start");
        Process h2 = new ProcessBuilder("/usr/bin/python3", resource("h2c-streams-server.py"), "127.0.117.22", "58684")
                .redirectErrorStream(true).start();
        processes.add(h2);
        assertEquals("listening", new java.io.BufferedReader(new java.io.InputStreamReader(h2.getInputStream(),
                StandardCharsets.UTF_8)).readLine(), "python-h2 server did not start");

        int port = 58601;
        for (Service s : List.of(CONN, FLAKY, RESET, SLOW, OUT, H2, WEB, CHAT, ECHO)) {
            InetSocketAddress vip = new InetSocketAddress(WaypointState.address(s.getAddresses(0).getAddress()
                    .toByteArray()), s.getPorts(0).getServicePort());
            tunnels.put(s.getName(), box.clientTunnel(new InetSocketAddress("127.0.116.1", port++), SOURCE,
                    new InetSocketAddress("127.0.116.1", HBONE), WAYPOINT, vip));
        }
    }

    @AfterAll
    static void stop() throws Exception {
        java.util.logging.Logger.getLogger("dev.ambient.waypoint.access").removeHandler(capture);
        processes.forEach(Process::destroyForcibly);
        for (AutoCloseable a : apps) {
            a.close();
        }
        if (box != null) {
            box.close();
        }
    }

    static String resource(String name) throws Exception {
        return Path.of(WaypointRouteDefaultsTest.class.getResource("/" + name).toURI()).toString();
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** A JDK HTTP server as the application {@code name}: counts each request by path, reads the body, answers the status. */
    static void app(String name, String ip, java.util.function.ToIntFunction<com.sun.net.httpserver.HttpExchange> status)
            throws IOException {
        HttpServer server = HttpServer.create(new InetSocketAddress(ip, APP), 64);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/", ex -> {
            byte[] body = ex.getRequestBody().readAllBytes();
            seen.computeIfAbsent(name + " " + ex.getRequestURI().getPath(), k -> new AtomicInteger()).incrementAndGet();
            if (name.equals("mirror-rec")) {
                mirrored.add(ex.getRequestMethod() + " " + ex.getRequestURI() + " " + ex.getRequestHeaders()
                        .getFirst("Host") + " " + body.length + " " + sha256(body));
            }
            int code = status.applyAsInt(ex);
            byte[] answer = (name + " " + body.length + " " + sha256(body)).getBytes(StandardCharsets.UTF_8);
            try {
                ex.sendResponseHeaders(code, answer.length);
                try (OutputStream out = ex.getResponseBody()) {
                    out.write(answer);
                }
            } catch (IOException e) {
                // the waypoint gave up (timeouts)
            }
        });
        server.start();
        apps.add(() -> server.stop(0));
    }

    static int seen(String app, String path) {
        AtomicInteger n = seen.get(app + " " + path);
        return n == null ? 0 : n.get();
    }

    static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b)).substring(0, 16);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static HttpResponse<String> send(String service, String method, String path, byte[] body) throws Exception {
        InetSocketAddress t = tunnels.get(service);
        return http.send(HttpRequest.newBuilder(URI.create("http://" + t.getHostString() + ":" + t.getPort() + path))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofByteArray(body))
                .timeout(Duration.ofSeconds(20)).build(), HttpResponse.BodyHandlers.ofString());
    }

    static String logLine(String contains) {
        for (int i = 0; i < 100; i++) {
            for (String l : accessLog) {
                if (l.contains(contains)) {
                    return l;
                }
            }
            sleep(20);
        }
        return "no access-log line with " + contains + " in " + accessLog;
    }

    static double mirrors(String outcome) {
        return registry.get("waypoint_mirrors_total").tag("outcome", outcome).counter().count();
    }

    // ---------------------------------------------------------------- retries, Istio's default

    @Test
    void aRouteWithoutRetriesGetsIstiosDefaultOnAnotherEndpoint() throws Exception {
        // One endpoint refuses connections: each request that picks it is retried on the other one.
        for (int i = 0; i < 20; i++) {
            HttpResponse<String> r = send("conn", "GET", "/c" + i, null);
            assertEquals(200, r.statusCode(), "request " + i + ": " + r.body());
        }
        assertTrue(accessLog.stream().anyMatch(l -> l.contains("\"GET /c") && l.contains("attempts=2")),
                "some requests met the dead endpoint first and were retried: " + accessLog);

        // A 503 is retried (GET, PUT, a POST without a body) ...
        assertEquals(200, send("flaky", "GET", "/g1", null).statusCode());
        assertEquals(2, seen("flaky", "/g1"));
        assertEquals(200, send("flaky", "PUT", "/u1", "put".getBytes()).statusCode());
        assertEquals(2, seen("flaky", "/u1"));
        assertEquals(200, send("flaky", "POST", "/e1", null).statusCode());
        assertEquals(2, seen("flaky", "/e1"));
        // ... but never a POST whose body the application got: it may have acted on it.
        HttpResponse<String> post = send("flaky", "POST", "/p1", "order one".getBytes());
        assertEquals(503, post.statusCode());
        assertEquals(1, seen("flaky", "/p1"), "the POST reached the application once");
        assertTrue(logLine("\"POST /p1").contains("not retried: POST is not idempotent and its body reached the"
                + " endpoint"), logLine("\"POST /p1"));
    }

    /** An HTTP/2 application (python-h2) that refuses a stream, or answers gRPC UNAVAILABLE, once. */
    @Test
    void aRefusedStreamAndGrpcUnavailableAreRetriedByDefault() throws Exception {
        HttpResponse<String> r = send("h2", "GET", "/refuse-once/a", null);
        assertEquals(200, r.statusCode(), r.body());
        assertEquals("attempt 2", r.body(), "RST_STREAM(REFUSED_STREAM) is retried (refused-stream)");
        // A POST with a body, as every gRPC call is: UNAVAILABLE says the server did not act on it.
        InetSocketAddress t = tunnels.get("h2");
        HttpResponse<String> g = http.send(HttpRequest.newBuilder(URI.create("http://" + t.getHostString() + ":"
                + t.getPort() + "/unavailable-once/a")).header("content-type", "application/grpc")
                .POST(HttpRequest.BodyPublishers.ofByteArray(new byte[] {0, 0, 0, 0, 1, 7}))
                .timeout(Duration.ofSeconds(20)).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals("0", g.headers().firstValue("grpc-status").orElse(null), g.headers().toString());
        assertEquals("attempt 2", g.headers().firstValue("grpc-message").orElse(null), "retried on unavailable");
    }

    @Test
    void resetsAreNotInIstiosDefaultButAre5xxAndStillNeverResendAPostBody() throws Exception {
        HttpResponse<String> d = send("reset", "GET", "/d1", null);
        assertEquals(503, d.statusCode(), d.body());
        assertEquals(1, ResettingApp.tries("/d1"), "Istio's default retry_on has no reset");
        assertEquals(200, send("reset", "GET", "/5xx/a", null).statusCode());
        assertEquals(2, ResettingApp.tries("/5xx/a"), "retry_on 5xx covers a reset");
        assertEquals(503, send("reset", "POST", "/5xx/b", "pay".getBytes()).statusCode());
        assertEquals(1, ResettingApp.tries("/5xx/b"), "a POST body that reached the application is not resent");
        assertEquals(200, send("reset", "GET", "/d1", null).statusCode(), "a good request still passes");
    }

    @Test
    void aPerTryTimeoutUnderAnHttpRoutesConditionsAnswers504Once() throws Exception {
        long t0 = System.nanoTime();
        HttpResponse<String> r = send("slow", "GET", "/t1", null);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertEquals(504, r.statusCode(), r.body());
        assertTrue(ms < 2_500, "the per-try timeout (300 ms) ended it, not the application: " + ms + " ms");
        sleep(200);
        assertEquals(1, seen("slow", "/t1"), "a per-try timeout is not among Istio's HTTPRoute retry conditions");
    }

    @Test
    void withoutADestinationRuleNoEndpointIsEjected() throws Exception {
        for (int i = 0; i < 30; i++) {
            assertEquals(200, send("out", "GET", "/o" + i, null).statusCode());
        }
        int failing = seen.entrySet().stream().filter(e -> e.getKey().startsWith("out-a ")).mapToInt(e -> e.getValue()
                .get()).sum();
        assertFalse(waypoint.balancer().ejected("Kubernetes//Pod/" + NS + "/out-a"));
        assertTrue(failing >= 10, "the failing endpoint keeps its share (Istio ejects only under a DestinationRule's"
                + " outlierDetection): " + failing);
    }

    // ---------------------------------------------------------------- RequestMirror

    static String curl(String service, String path, String... more) throws Exception {
        InetSocketAddress t = tunnels.get(service);
        List<String> cmd = new ArrayList<>(List.of("curl", "-sS", "--http1.1", "--path-as-is", "-o", "-", "-w",
                " %{http_code}", "-H", "Host: " + WEB.getHostname()));
        cmd.addAll(List.of(more));
        cmd.add("http://" + t.getHostString() + ":" + t.getPort() + path);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "curl did not finish");
        return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    }

    @Test
    void aMirrorGetsTheRequestAsTheApplicationDoesWithAShadowHost() throws Exception {
        byte[] body = new byte[100 * 1024];
        new java.util.Random(16).nextBytes(body);
        Path file = dir.resolve("copy.bin");
        Files.write(file, body);
        double sent = mirrors("sent");
        String primary = curl("web", "/copy/a?x=1", "--data-binary", "@" + file);
        assertTrue(primary.endsWith(" 200") && primary.contains("web " + body.length + " " + sha256(body)), primary);
        String expected = "POST /copy/a?x=1 " + WEB.getHostname() + "-shadow " + body.length + " " + sha256(body);
        for (int i = 0; i < 100 && !mirrored.contains(expected); i++) {
            sleep(20);
        }
        assertTrue(mirrored.contains(expected), "the mirror's application got " + mirrored);
        for (int i = 0; i < 100 && mirrors("sent") < sent + 1; i++) {
            sleep(20);
        }
        assertEquals(sent + 1, mirrors("sent"));

        // A body over the copy's bound (256 KiB here): the primary passes whole, the copy is dropped and counted.
        byte[] big = new byte[512 * 1024];
        Files.write(dir.resolve("big.bin"), big);
        double droppedBody = mirrors("dropped_body");
        String bigPrimary = curl("web", "/copy/big", "--data-binary", "@" + dir.resolve("big.bin"));
        assertTrue(bigPrimary.endsWith(" 200") && bigPrimary.contains("web " + big.length + " " + sha256(big)),
                bigPrimary);
        assertEquals(droppedBody + 1, mirrors("dropped_body"));
        // Percent 0: never a copy.
        assertTrue(curl("web", "/never/x").endsWith(" 200"));
        sleep(300);
        assertEquals(0, mirrored.stream().filter(m -> m.contains("/copy/big") || m.contains("/never")).count(),
                mirrored.toString());
    }

    /** The primary's latency with a mirror that is slow, hangs, or cannot be reached is the latency without one. */
    @Test
    void aMirrorNeverDelaysNorFailsThePrimary() throws Exception {
        Map<String, Long> p50 = new java.util.LinkedHashMap<>();
        Map<String, Long> worst = new java.util.LinkedHashMap<>();
        double failedBefore = mirrors("failed");
        double inFlightDropsBefore = mirrors("dropped_in_flight");
        Map<String, List<Long>> times = new java.util.LinkedHashMap<>();
        for (int i = 0; i < 20; i++) {
            for (String kind : List.of("plain", "slow", "hang", "down")) { // interleaved: the same machine load for each
                long t0 = System.nanoTime();
                HttpResponse<String> r = send("web", "GET", "/" + kind + "/" + i, null);
                times.computeIfAbsent(kind, k -> new ArrayList<>()).add((System.nanoTime() - t0) / 1_000);
                assertEquals(200, r.statusCode(), kind + ": " + r.body());
            }
        }
        times.forEach((kind, list) -> {
            List<Long> sorted = list.subList(2, list.size()).stream().sorted().toList(); // the first two warm up
            p50.put(kind, sorted.get(sorted.size() / 2));
            worst.put(kind, sorted.getLast());
        });
        System.out.println("primary latency p50 / worst, microseconds, by mirror: " + p50 + " / " + worst);
        for (String kind : List.of("slow", "hang", "down")) {
            assertTrue(p50.get(kind) < p50.get("plain") + 50_000, kind + " mirror: p50 " + p50);
            assertTrue(worst.get(kind) < 1_000_000, kind + " mirror: a primary took " + worst.get(kind) + " us");
        }
        // The hanging mirror holds its places (4) until its timeout (2 s): more copies are dropped, not queued.
        assertTrue(mirrors("dropped_in_flight") > inFlightDropsBefore, "the in-flight bound dropped copies");
        for (int i = 0; i < 300 && waypointMirrorsInFlight() > 0; i++) {
            sleep(20);
        }
        assertEquals(0, waypointMirrorsInFlight(), "every copy ended (timeouts, failures)");
        assertTrue(mirrors("failed") >= failedBefore + 4, "slow, hanging and unreachable mirrors counted as failed: "
                + mirrors("failed"));
        assertEquals(200, send("web", "GET", "/plain/after", null).statusCode());
    }

    static int waypointMirrorsInFlight() {
        return (int) registry.get("waypoint_mirrors_in_flight").gauge().value();
    }

    // ---------------------------------------------------------------- idle tunnels

    @Test
    void anIdleWebSocketIsClosedAndAnActiveOneIsNot() throws Exception {
        InetSocketAddress t = tunnels.get("chat");
        Process active = new ProcessBuilder("/usr/bin/python3", resource("websocket-idle.py"), t.getHostString(),
                Integer.toString(t.getPort()), "/ws", "active", "5").redirectErrorStream(true).start();
        Process idle = new ProcessBuilder("/usr/bin/python3", resource("websocket-idle.py"), t.getHostString(),
                Integer.toString(t.getPort()), "/ws", "idle", "8").redirectErrorStream(true).start();
        assertTrue(active.waitFor(30, TimeUnit.SECONDS) && idle.waitFor(30, TimeUnit.SECONDS));
        String a = new String(active.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        String i = new String(idle.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        System.out.println("WebSocket, stream idle timeout 2 s: active " + a + "; idle " + i);
        assertTrue(a.startsWith("open after"), a);
        assertTrue(i.startsWith("closed after"), i);
        double after = Double.parseDouble(i.split(" ")[2]);
        assertTrue(after >= 1.5 && after < 6, i);
        assertTrue(logLine("after the stream idle timeout").contains("upgraded to websocket"), accessLog.toString());
    }

    @Test
    void anIdleTcpTunnelIsClosedAndAnActiveOneIsNot() throws Exception {
        InetSocketAddress t = tunnels.get("echo");
        try (Socket active = new Socket(t.getAddress(), t.getPort()); Socket idle = new Socket(t.getAddress(), t.getPort())) {
            active.setSoTimeout(5_000);
            idle.setSoTimeout(10_000);
            idle.getOutputStream().write("x".getBytes());
            assertEquals('x', idle.getInputStream().read());
            long t0 = System.nanoTime();
            for (int i = 0; i < 10; i++) {
                active.getOutputStream().write('a' + i);
                assertEquals('a' + i, active.getInputStream().read(), "active tunnel, message " + i);
                sleep(500);
            }
            int end;
            try {
                end = idle.getInputStream().read();
            } catch (SocketTimeoutException e) {
                end = -2;
            } catch (IOException e) {
                end = -1; // reset: closed too
            }
            double s = (System.nanoTime() - t0) / 1e9;
            assertEquals(-1, end, "the idle tunnel was closed (after " + s + " s)");
            active.getOutputStream().write('z');
            assertEquals('z', active.getInputStream().read(), "the active tunnel lived through it");
        }
        assertTrue(logLine("after the idle timeout (2000 ms)").contains("tcp"), accessLog.toString());
    }

    // ---------------------------------------------------------------- access log

    @Test
    void theAccessLogShowsThePathAsTheClientSentItAndWhatWasForwarded() throws Exception {
        assertTrue(curl("web", "/old/x?y=1").endsWith(" 200"));
        String line = logLine("\"GET /old/x?y=1 HTTP/1.1\"");
        assertTrue(line.contains("forwarded=/new/x?y=1") && line.contains("route=old"), line);
        assertTrue(curl("web", "/a/../plain/p").endsWith(" 200"));
        line = logLine("\"GET /a/../plain/p HTTP/1.1\"");
        assertTrue(line.contains("forwarded=/plain/p"), line);
        assertTrue(curl("web", "/plain/same").endsWith(" 200"));
        line = logLine("\"GET /plain/same HTTP/1.1\"");
        assertFalse(line.contains("forwarded="), "nothing changed, nothing more: " + line);
    }

    // ---------------------------------------------------------------- applications that fail

    /** Binds {@code server} and serves each connection on a virtual thread of its own. */
    static void acceptEach(ServerSocket server, InetSocketAddress address, java.util.function.Consumer<Socket> serve)
            throws IOException {
        server.setReuseAddress(true);
        server.bind(address);
        Thread.ofVirtual().start(() -> {
            while (!server.isClosed()) {
                try {
                    Socket s = server.accept();
                    Thread.ofVirtual().start(() -> serve.accept(s));
                } catch (IOException e) {
                    return;
                }
            }
        });
    }

    /** An application that resets the first connection of each path (after reading the request), then answers 200. */
    static final class ResettingApp implements AutoCloseable {
        static final Map<String, AtomicInteger> tries = new ConcurrentHashMap<>();
        private final ServerSocket server = new ServerSocket();

        ResettingApp(InetSocketAddress address) throws IOException {
            acceptEach(server, address, this::serve);
        }

        static int tries(String path) {
            AtomicInteger n = tries.get(path);
            return n == null ? 0 : n.get();
        }

        private void serve(Socket s) {
            try (s) {
                InputStream in = s.getInputStream();
                while (true) {
                    String head = readHead(in);
                    if (head == null) {
                        return;
                    }
                    String path = head.split(" ")[1];
                    int length = 0;
                    for (String l : head.split("\r\n")) {
                        if (l.toLowerCase().startsWith("content-length:")) {
                            length = Integer.parseInt(l.substring(15).trim());
                        }
                    }
                    in.readNBytes(length);
                    if (tries.computeIfAbsent(path, k -> new AtomicInteger()).incrementAndGet() == 1) {
                        s.setSoLinger(true, 0);
                        return; // RST, no response
                    }
                    s.getOutputStream().write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                            .getBytes(StandardCharsets.ISO_8859_1));
                }
            } catch (IOException e) {
                // the waypoint went away
            }
        }

        static String readHead(InputStream in) throws IOException {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            int tail = 0;
            for (int c; (c = in.read()) >= 0;) {
                b.write(c);
                tail = tail << 8 | c;
                if (tail == 0x0d0a0d0a) {
                    return b.toString(StandardCharsets.ISO_8859_1);
                }
            }
            return null;
        }

        @Override
        public void close() throws IOException {
            server.close();
        }
    }

    /** An application that accepts and reads, and never answers. */
    static final class HangingApp implements AutoCloseable {
        private final ServerSocket server = new ServerSocket();

        HangingApp(InetSocketAddress address) throws IOException {
            acceptEach(server, address, s -> {
                try (s) {
                    s.getInputStream().transferTo(OutputStream.nullOutputStream());
                } catch (IOException ignored) {
                    // reset by the waypoint's timeout
                }
            });
        }

        @Override
        public void close() throws IOException {
            server.close();
        }
    }
}
