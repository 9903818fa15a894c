package dev.ambient.waypoint;

import static dev.ambient.waypoint.MeshFixtures.client;
import static dev.ambient.waypoint.MeshFixtures.denyPathPrefix;
import static dev.ambient.waypoint.MeshFixtures.key;
import static dev.ambient.waypoint.MeshFixtures.pod;
import static dev.ambient.waypoint.MeshFixtures.service;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.l7.FaultInjection;
import dev.ambient.proto.l7.HeaderMatch;
import dev.ambient.proto.l7.HeaderMutation;
import dev.ambient.proto.l7.PathMatch;
import dev.ambient.proto.l7.RetryPolicy;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.RouteMatch;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.l7.WeightedBackend;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.waypoint.state.WaypointState;
import io.micrometer.prometheus.PrometheusConfig;
import io.micrometer.prometheus.PrometheusMeterRegistry;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The waypoint's HTTP data path with real parts on loopback: clients reach it through real HBONE
 * tunnels (mutual TLS, the source workload's certificate), it forwards through HBONE to real
 * endpoint servers that check nothing but dial the pod's port, where real HTTP servers answer.
 * Independent clients: the JDK's HttpClient, curl (HTTP/1.1) and nghttp (h2c).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class WaypointDataPathTest {

    static final String NS = "demo";
    static final int HBONE = 58008;
    static final int ENDPOINT_HBONE = 58108;
    static final int POD_PORT = 58280;
    static final SpiffeId SOURCE = new SpiffeId("cluster.local", NS, "productpage");
    static final SpiffeId WAYPOINT = new SpiffeId("cluster.local", NS, "waypoint");

    // Declared "http" (as a port named http): the backends speak HTTP/1.1 only, whatever the client speaks.
    static final Service REVIEWS = service("reviews", NS, "127.0.81.10", 9080, POD_PORT, "http");
    static final Service REVIEWS_V1 = service("reviews-v1", NS, "127.0.81.11", 9080, POD_PORT, "http");
    static final Service REVIEWS_V2 = service("reviews-v2", NS, "127.0.81.12", 9080, POD_PORT, "http");
    // Ejection only because a DestinationRule asks for it (as svc-xds puts it on the service), as in Istio.
    static final Service FLAKY = service("flaky", NS, "127.0.81.20", 9080, POD_PORT).toBuilder()
            .setOutlierDetection(dev.ambient.proto.workload.OutlierDetection.newBuilder().setConsecutive5XxErrors(3)
                    .setIntervalMs(1_000).setBaseEjectionMs(30_000).setMaxEjectionPercent(50)).build();
    static final Service SLOW = service("slow", NS, "127.0.81.30", 9080, POD_PORT);
    static final Service ECHO = service("echo", NS, "127.0.81.40", 9000, 58290);
    static final Service RATINGS = service("ratings", NS, "127.0.81.50", 9080, POD_PORT);
    // Served by an HTTP/2-only server (python-h2): declared grpc, and one with no declared protocol.
    static final Service GREETER = service("greeter", NS, "127.0.81.60", 50051, 58295, "grpc");
    static final Service AUTO = service("auto", NS, "127.0.81.61", 8080, 58295);

    @TempDir
    static Path dir;
    static HboneTestBox box;
    static WaypointNode waypoint;
    static PrometheusMeterRegistry registry;
    static HboneTestBox.Backend v1;
    static HboneTestBox.Backend v2;
    static HboneTestBox.Backend flakyA;
    static HboneTestBox.Backend flakyB;
    static InetSocketAddress reviews;
    static InetSocketAddress flaky;
    static InetSocketAddress slow;
    static InetSocketAddress echo;
    static InetSocketAddress ratings;
    static EchoServer echoServer;
    static Process h2Server;
    static InetSocketAddress greeter;
    static InetSocketAddress auto;
    static final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();

    @BeforeAll
    static void start() throws Exception {
        box = new HboneTestBox(dir);
        registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        waypoint = box.waypoint("127.0.80.1", HBONE, ENDPOINT_HBONE, Map.of(), registry);

        Workload podV1 = pod("reviews-v1", NS, "reviews", "127.0.82.1", key(REVIEWS), 9080, POD_PORT);
        Workload podV2 = pod("reviews-v2", NS, "reviews", "127.0.82.2", key(REVIEWS), 9080, POD_PORT);
        podV1 = podV1.toBuilder().putServices(key(REVIEWS_V1), podV1.getServicesOrThrow(key(REVIEWS)))
                .putServices(key(RATINGS), podV1.getServicesOrThrow(key(REVIEWS))).build();
        podV2 = podV2.toBuilder().putServices(key(REVIEWS_V2), podV2.getServicesOrThrow(key(REVIEWS))).build();
        Workload podFlakyA = pod("flaky-a", NS, "flaky", "127.0.82.3", key(FLAKY), 9080, POD_PORT);
        Workload podFlakyB = pod("flaky-b", NS, "flaky", "127.0.82.4", key(FLAKY), 9080, POD_PORT);
        Workload podSlow = pod("slow", NS, "slow", "127.0.82.5", key(SLOW), 9080, POD_PORT);
        Workload podEcho = pod("echo", NS, "echo", "127.0.82.6", key(ECHO), 9000, 58290);
        Workload productpage = client("productpage", NS, "productpage", "127.0.0.1");
        Workload podGreeter = pod("greeter", NS, "greeter", "127.0.82.7", key(GREETER), 50051, 58295);
        podGreeter = podGreeter.toBuilder().putServices(key(AUTO), PortList.newBuilder().addPorts(
                Port.newBuilder().setServicePort(8080).setTargetPort(58295)).build()).build();

        ServiceRoutes reviewsRoutes = ServiceRoutes.newBuilder().setServiceHostname(REVIEWS.getHostname())
                .setServiceNamespace(NS)
                .addRoutes(Route.newBuilder().setName("by-header")
                        .addMatches(RouteMatch.newBuilder().addHeaders(HeaderMatch.newBuilder().setName("x-version")
                                .setValue("v2")))
                        .addRequestHeaderMutations(HeaderMutation.newBuilder().setName("x-routed-by").setValue("waypoint"))
                        .addRequestHeaderMutations(HeaderMutation.newBuilder().setOp(HeaderMutation.Op.REMOVE)
                                .setName("x-drop-me"))
                        .addResponseHeaderMutations(HeaderMutation.newBuilder().setName("x-served-via")
                                .setValue("by-header"))
                        .addBackends(backend(REVIEWS_V2, 100)))
                .addRoutes(Route.newBuilder().setName("items-regex")
                        .addMatches(RouteMatch.newBuilder().setPath(PathMatch.newBuilder()
                                .setKind(PathMatch.Kind.REGULAR_EXPRESSION).setValue("/items/[0-9]+")))
                        .addBackends(backend(REVIEWS_V2, 1)))
                .addRoutes(Route.newBuilder().setName("delete-method")
                        .addMatches(RouteMatch.newBuilder().setMethod("DELETE"))
                        .addBackends(backend(REVIEWS_V2, 1)))
                .addRoutes(Route.newBuilder().setName("fault-abort")
                        .addMatches(RouteMatch.newBuilder().setPath(PathMatch.newBuilder()
                                .setKind(PathMatch.Kind.PREFIX).setValue("/fault/abort")))
                        .setFault(FaultInjection.newBuilder().setAbortStatus(418).setAbortPercent(100))
                        .addBackends(backend(REVIEWS_V1, 1)))
                .addRoutes(Route.newBuilder().setName("fault-delay")
                        .addMatches(RouteMatch.newBuilder().setPath(PathMatch.newBuilder()
                                .setKind(PathMatch.Kind.EXACT).setValue("/fault/delay")))
                        .setFault(FaultInjection.newBuilder().setDelayMs(400).setDelayPercent(100))
                        .addBackends(backend(REVIEWS_V1, 1)))
                .addRoutes(Route.newBuilder().setName("split")
                        .addMatches(RouteMatch.newBuilder().setPath(PathMatch.newBuilder()
                                .setKind(PathMatch.Kind.PREFIX).setValue("/")))
                        .addBackends(backend(REVIEWS_V1, 90)).addBackends(backend(REVIEWS_V2, 10)))
                .build();
        ServiceRoutes flakyRoutes = ServiceRoutes.newBuilder().setServiceHostname(FLAKY.getHostname())
                .setServiceNamespace(NS)
                .addRoutes(Route.newBuilder().setName("retry")
                        .setRetry(RetryPolicy.newBuilder().setAttempts(2).addRetryOn("5xx").setBackoffBaseMs(5))
                        .addBackends(backend(FLAKY, 1)))
                .build();
        ServiceRoutes slowRoutes = ServiceRoutes.newBuilder().setServiceHostname(SLOW.getHostname())
                .setServiceNamespace(NS)
                .addRoutes(Route.newBuilder().setName("timeout").setTimeoutMs(300).addBackends(backend(SLOW, 1)))
                .build();
        ServiceRoutes ratingsRoutes = ServiceRoutes.newBuilder().setServiceHostname(RATINGS.getHostname())
                .setServiceNamespace(NS)
                .addRoutes(Route.newBuilder().setName("only-ratings")
                        .addMatches(RouteMatch.newBuilder().setPath(PathMatch.newBuilder()
                                .setKind(PathMatch.Kind.EXACT).setValue("/ratings")))
                        .addBackends(backend(RATINGS, 1)))
                .build();

        waypoint.store().replace(WaypointState.of(
                List.of(podV1, podV2, podFlakyA, podFlakyB, podSlow, podEcho, podGreeter, productpage),
                List.of(REVIEWS, REVIEWS_V1, REVIEWS_V2, FLAKY, SLOW, ECHO, RATINGS, GREETER, AUTO),
                List.of(reviewsRoutes, flakyRoutes, slowRoutes, ratingsRoutes),
                // On the reviews service only: a DENY naming paths also denies TCP streams it applies to
                // (Istio's semantics for TCP), and echo below is TCP.
                List.of(denyPathPrefix("no-admin", NS, "Service/demo/" + REVIEWS.getHostname(), "/admin"))));

        SpiffeId reviewsId = new SpiffeId("cluster.local", NS, "reviews");
        box.endpointServer(new InetSocketAddress("127.0.82.1", ENDPOINT_HBONE), reviewsId);
        box.endpointServer(new InetSocketAddress("127.0.82.2", ENDPOINT_HBONE), reviewsId);
        box.endpointServer(new InetSocketAddress("127.0.82.3", ENDPOINT_HBONE), new SpiffeId("cluster.local", NS, "flaky"));
        box.endpointServer(new InetSocketAddress("127.0.82.4", ENDPOINT_HBONE), new SpiffeId("cluster.local", NS, "flaky"));
        box.endpointServer(new InetSocketAddress("127.0.82.5", ENDPOINT_HBONE), new SpiffeId("cluster.local", NS, "slow"));
        box.endpointServer(new InetSocketAddress("127.0.82.6", ENDPOINT_HBONE), new SpiffeId("cluster.local", NS, "echo"));
        v1 = box.backend(new InetSocketAddress("127.0.82.1", POD_PORT), ex -> HboneTestBox.Reply.ok("reviews v1"));
        v2 = box.backend(new InetSocketAddress("127.0.82.2", POD_PORT), ex -> HboneTestBox.Reply.ok("reviews v2"));
        flakyA = box.backend(new InetSocketAddress("127.0.82.3", POD_PORT),
                ex -> new HboneTestBox.Reply(500, "broken", 0));
        flakyB = box.backend(new InetSocketAddress("127.0.82.4", POD_PORT), ex -> HboneTestBox.Reply.ok("flaky b"));
        box.backend(new InetSocketAddress("127.0.82.5", POD_PORT), ex -> new HboneTestBox.Reply(200, "late", 2_000));
        box.endpointServer(new InetSocketAddress("127.0.82.7", ENDPOINT_HBONE),
                new SpiffeId("cluster.local", NS, "greeter"));
        h2Server = startH2Server("127.0.82.7", 58295);
        echoServer = new EchoServer(new InetSocketAddress("127.0.82.6", 58290));

        InetSocketAddress wp = new InetSocketAddress("127.0.80.1", HBONE);
        reviews = box.clientTunnel(new InetSocketAddress("127.0.80.1", 58101), SOURCE, wp, WAYPOINT, vip(REVIEWS, 9080));
        flaky = box.clientTunnel(new InetSocketAddress("127.0.80.1", 58102), SOURCE, wp, WAYPOINT, vip(FLAKY, 9080));
        slow = box.clientTunnel(new InetSocketAddress("127.0.80.1", 58103), SOURCE, wp, WAYPOINT, vip(SLOW, 9080));
        echo = box.clientTunnel(new InetSocketAddress("127.0.80.1", 58104), SOURCE, wp, WAYPOINT, vip(ECHO, 9000));
        ratings = box.clientTunnel(new InetSocketAddress("127.0.80.1", 58105), SOURCE, wp, WAYPOINT, vip(RATINGS, 9080));
        greeter = box.clientTunnel(new InetSocketAddress("127.0.80.1", 58106), SOURCE, wp, WAYPOINT,
                vip(GREETER, 50051));
        auto = box.clientTunnel(new InetSocketAddress("127.0.80.1", 58107), SOURCE, wp, WAYPOINT, vip(AUTO, 8080));
    }

    /** The HTTP/2-only server of test resource h2c-grpc-echo.py, once it listens. */
    static Process startH2Server(String host, int port) throws Exception {
        Path script = Path.of(WaypointDataPathTest.class.getResource("/h2c-grpc-echo.py").toURI());
        Process p = new ProcessBuilder("/usr/bin/python3", script.toString(), host, Integer.toString(port))
                .redirectErrorStream(true).start();
        String first = new java.io.BufferedReader(new java.io.InputStreamReader(p.getInputStream(),
                StandardCharsets.UTF_8)).readLine();
        assertEquals("listening", first, "python-h2 server (Debian python3-h2) did not start");
        return p;
    }

    static WeightedBackend backend(Service s, int weight) {
        return WeightedBackend.newBuilder().setService(key(s)).setPort(9080).setWeight(weight).build();
    }

    static InetSocketAddress vip(Service s, int port) {
        return new InetSocketAddress(WaypointState.address(s.getAddresses(0).getAddress().toByteArray()), port);
    }

    @AfterAll
    static void stop() throws Exception {
        if (echoServer != null) {
            echoServer.close();
        }
        if (h2Server != null) {
            h2Server.destroyForcibly();
        }
        if (box != null) {
            box.close();
        }
    }

    static HttpResponse<String> get(InetSocketAddress tunnel, String path, String... headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://" + tunnel.getHostString() + ":"
                + tunnel.getPort() + path)).timeout(Duration.ofSeconds(10));
        for (int i = 0; i < headers.length; i += 2) {
            b.header(headers[i], headers[i + 1]);
        }
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void ninetyTenSplitOverAThousandRequests() throws Exception {
        int n = 1000;
        int toV2 = 0;
        for (int i = 0; i < n; i++) {
            HttpResponse<String> r = get(reviews, "/split/" + i);
            assertEquals(200, r.statusCode(), r.body());
            if (r.body().equals("reviews v2")) {
                toV2++;
            } else {
                assertEquals("reviews v1", r.body());
            }
        }
        // Binomial(1000, 0.1): mean 100, sd 9.5; 4.5 sd either side fails a correct split once in ~150,000 runs.
        assertTrue(toV2 >= 57 && toV2 <= 143, "v2 got " + toV2 + " of " + n);
    }

    @Test
    void headerMatchRoutesAndChangesHeaders() throws Exception {
        int before = v2.headers.size();
        HttpResponse<String> r = get(reviews, "/anything", "x-version", "v2", "x-drop-me", "secret");
        assertEquals(200, r.statusCode());
        assertEquals("reviews v2", r.body());
        assertEquals("by-header", r.headers().firstValue("x-served-via").orElse(null));
        assertTrue(r.headers().firstValue("traceparent").orElse("").matches("00-[0-9a-f]{32}-[0-9a-f]{16}-01"));
        Map<String, List<String>> seen = v2.headers.get(before);
        assertEquals(List.of("waypoint"), seen.get("X-routed-by"));
        assertFalse(seen.containsKey("X-drop-me"), seen.toString());
        assertTrue(seen.containsKey("Traceparent"), "traceparent generated and propagated: " + seen);
    }

    @Test
    void incomingTraceparentKeepsItsTraceId() throws Exception {
        String incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        HttpResponse<String> r = get(reviews, "/t", "x-version", "v2", "traceparent", incoming);
        String out = r.headers().firstValue("traceparent").orElseThrow();
        assertTrue(out.startsWith("00-4bf92f3577b34da6a3ce929d0e0e4736-"), out);
    }

    @Test
    void regexAndMethodMatches() throws Exception {
        assertEquals("reviews v2", get(reviews, "/items/42").body());
        HttpResponse<String> notDigits = get(reviews, "/items/abc");
        assertEquals(200, notDigits.statusCode());
        HttpResponse<String> del = http.send(HttpRequest.newBuilder(URI.create("http://127.0.80.1:58101/x"))
                .DELETE().build(), HttpResponse.BodyHandlers.ofString());
        assertEquals("reviews v2", del.body());
    }

    @Test
    void noMatchingRouteIs404() throws Exception {
        assertEquals(200, get(ratings, "/ratings").statusCode());
        HttpResponse<String> r = get(ratings, "/other");
        assertEquals(404, r.statusCode());
        assertEquals("route not found", r.body());
    }

    @Test
    void deniedPathGets403AndNeverReachesTheBackend() throws Exception {
        int v1Before = v1.requests.get();
        int v2Before = v2.requests.get();
        HttpResponse<String> r = get(reviews, "/admin/users");
        assertEquals(403, r.statusCode());
        assertEquals("RBAC: access denied", r.body());
        // The path the application would serve is the path policy checks: dot segments, encoded
        // dots and absolute-form targets do not slip past the DENY.
        for (String target : List.of("/public/../admin/users", "/public/%2e%2e/admin", "http://reviews/admin/x")) {
            String out = run("curl", "-sS", "--path-as-is", "--request-target", target, "-o", "/dev/null", "-w",
                    "%{http_code}", "http://127.0.80.1:58101/");
            assertEquals("403", out.trim(), target);
        }
        assertEquals(v1Before, v1.requests.get());
        assertEquals(v2Before, v2.requests.get());
        assertEquals(200, get(reviews, "/public").statusCode(), "other paths pass");
    }

    @Test
    void retriesHideAFailingEndpointWhichIsThenEjected() throws Exception {
        for (int i = 0; i < 30; i++) {
            HttpResponse<String> r = get(flaky, "/r" + i);
            assertEquals(200, r.statusCode(), "request " + i + ": " + r.body());
            assertEquals("flaky b", r.body());
        }
        assertTrue(flakyA.requests.get() >= 3, "the failing endpoint was tried: " + flakyA.requests.get());
        assertTrue(waypoint.balancer().ejected("Kubernetes//Pod/demo/flaky-a"), "flaky-a ejected");
        int aAfterEjection = flakyA.requests.get();
        for (int i = 0; i < 10; i++) {
            assertEquals(200, get(flaky, "/after" + i).statusCode());
        }
        assertEquals(aAfterEjection, flakyA.requests.get(), "an ejected endpoint gets no traffic");
    }

    @Test
    void routeTimeoutAnswers504() throws Exception {
        long start = System.nanoTime();
        HttpResponse<String> r = get(slow, "/slow");
        long ms = (System.nanoTime() - start) / 1_000_000;
        assertEquals(504, r.statusCode());
        assertEquals("upstream request timeout", r.body());
        assertTrue(ms >= 290 && ms < 1_800, "answered after " + ms + " ms");
    }

    @Test
    void faultInjectionAbortsAndDelays() throws Exception {
        int before = v1.requests.get();
        HttpResponse<String> abort = get(reviews, "/fault/abort");
        assertEquals(418, abort.statusCode());
        assertEquals("fault filter abort", abort.body());
        long start = System.nanoTime();
        HttpResponse<String> delayed = get(reviews, "/fault/delay");
        long ms = (System.nanoTime() - start) / 1_000_000;
        assertEquals(200, delayed.statusCode());
        assertTrue(ms >= 390, "delayed by " + ms + " ms");
        assertEquals(before + 1, v1.requests.get(), "the aborted request never reached the backend");
    }

    @Test
    void nonHttpTrafficIsForwardedAsTcp() throws Exception {
        try (Socket s = new Socket()) {
            s.setSoTimeout(10_000);
            s.connect(echo, 5_000);
            byte[] payload = new byte[200_000];
            new java.util.Random(7).nextBytes(payload);
            payload[0] = 0x16; // starts like TLS, not like HTTP
            OutputStream out = s.getOutputStream();
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    out.write(payload);
                    s.shutdownOutput();
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            InputStream in = s.getInputStream();
            byte[] back = in.readAllBytes();
            writer.join();
            assertEquals(payload.length, back.length);
            assertTrue(java.util.Arrays.equals(payload, back));
        }
    }

    @Test
    void curlSpeaksHttp11ThroughTheTunnel() throws Exception {
        Process p = new ProcessBuilder("curl", "-sS", "--http1.1", "-H", "x-version: v2", "-o", "-", "-w",
                " %{http_code} %{http_version}", "http://127.0.80.1:58101/curl").redirectErrorStream(true).start();
        assertTrue(p.waitFor(20, TimeUnit.SECONDS));
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals("reviews v2 200 1.1", out.trim());
    }

    @Test
    void nghttpSpeaksH2cThroughTheTunnel() throws Exception {
        // nghttp talks HTTP/2 with prior knowledge over cleartext: the connection preface, then frames.
        Process p = new ProcessBuilder("nghttp", "-v", "-H", "x-version: v2", "http://127.0.80.1:58101/h2")
                .redirectErrorStream(true).start();
        assertTrue(p.waitFor(20, TimeUnit.SECONDS));
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(out.contains(":status: 200"), out);
        assertTrue(out.contains("reviews v2"), out);
        assertTrue(out.contains("x-served-via: by-header"), out);
    }

    @Test
    void grpcReachesAnHttp2OnlyServerWithItsTrailers() throws Exception {
        // nghttp (h2c) as a gRPC client would send; the port is declared grpc, so the waypoint
        // speaks HTTP/2 to the python-h2 server, keeps "te: trailers" and relays the trailers.
        Path body = dir.resolve("grpc-request");
        Files.writeString(body, "hello through the waypoint");
        String out = run("nghttp", "-v", "-H", "content-type: application/grpc", "-H", "te: trailers", "-d",
                body.toString(), "http://127.0.80.1:58106/demo.Greeter/SayHello");
        assertTrue(out.contains(":status: 200"), out);
        assertTrue(out.contains("x-upstream-protocol: h2"), out);
        assertTrue(out.contains("x-seen-te: trailers"), out);
        assertTrue(out.contains("x-seen-path: /demo.Greeter/SayHello"), out);
        assertTrue(out.contains("hello through the waypoint"), out);
        assertTrue(out.contains("grpc-status: 0") && out.contains("grpc-message: echoed"), "trailers relayed: " + out);

        // An HTTP/1.1 client of the same port: still HTTP/2 upstream (the port says so).
        String h1 = run("curl", "-sS", "-i", "--http1.1", "http://127.0.80.1:58106/demo.Greeter/SayHello");
        assertTrue(h1.startsWith("HTTP/1.1 200"), h1);
        assertTrue(h1.contains("x-upstream-protocol: h2"), h1);
    }

    @Test
    void aPortWithoutADeclaredProtocolGetsTheClientsHttpVersion() throws Exception {
        String h2 = run("nghttp", "-v", "http://127.0.80.1:58107/auto");
        assertTrue(h2.contains(":status: 200") && h2.contains("x-upstream-protocol: h2"), h2);
        // HTTP/1.1 from the client: HTTP/1.1 upstream, which this HTTP/2-only server cannot parse
        // (it answers with its SETTINGS frame): a protocol error, 503 as Envoy says it.
        HttpResponse<String> h1 = get(auto, "/auto");
        assertEquals(503, h1.statusCode(), h1.body());
        assertTrue(h1.body().endsWith("reset reason: protocol error"), h1.body());
        assertEquals(200, get(reviews, "/still-http1").statusCode(), "reviews, declared http, is unaffected");
    }

    static String run(String... command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        assertTrue(p.waitFor(20, TimeUnit.SECONDS), String.join(" ", command) + " did not finish");
        return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    }

    @Test
    void metricsCarryIstioLabels() throws Exception {
        get(reviews, "/admin/metrics-check");
        get(reviews, "/m", "x-version", "v2");
        String text = registry.scrape();
        String denied = text.lines().filter(l -> l.startsWith("istio_requests_total{") && l.contains("response_code=\"403\""))
                .findFirst().orElse("");
        assertTrue(denied.contains("reporter=\"waypoint\""), denied);
        assertTrue(denied.contains("source_principal=\"spiffe://cluster.local/ns/demo/sa/productpage\""), denied);
        assertTrue(denied.contains("source_workload=\"productpage\""), denied);
        assertTrue(denied.contains("destination_service=\"reviews.demo.svc.cluster.local\""), denied);
        assertTrue(denied.contains("connection_security_policy=\"mutual_tls\""), denied);
        String ok = text.lines().filter(l -> l.startsWith("istio_requests_total{") && l.contains("response_code=\"200\"")
                && l.contains("destination_workload=\"reviews-v2\"")).findFirst().orElse("");
        assertTrue(ok.contains("destination_service_name=\"reviews-v2\""), ok);
        assertTrue(ok.contains("request_protocol=\"http\""), ok);
        assertTrue(text.contains("istio_request_duration_milliseconds_bucket{"), "duration histogram");
        assertTrue(text.contains("le=\"0.5\""), "Istio's smallest duration bucket");
        assertTrue(text.contains("istio_request_bytes_bucket{") && text.contains("istio_response_bytes_bucket{"));
    }

    @Test
    void connectForAnAddressTheWaypointDoesNotServeIsRefusedWith400() throws Exception {
        var cert = box.ca.issue(SOURCE, Duration.ofHours(1));
        var tls = dev.ambient.identity.HboneTls.clientContext(cert, List.of(box.ca.root()));
        var connector = new dev.ambient.hbone.HboneConnector(box.transport, dev.ambient.hbone.HboneSettings.DEFAULTS,
                5_000, 0);
        var conn = connector.connect(new InetSocketAddress("127.0.80.1", HBONE), tls, java.util.Set.of(WAYPOINT),
                box.transport.group().next(), null).get(10, TimeUnit.SECONDS);
        try {
            var stream = conn.open(dev.ambient.hbone.HboneHeaders.connect(new InetSocketAddress("127.0.89.99", 80),
                    null, null));
            stream.await(10, TimeUnit.SECONDS);
            assertFalse(stream.isSuccess());
            assertEquals(400, ((dev.ambient.hbone.HboneException) stream.cause()).status());
            // A known service on a port it does not have is refused too.
            var noPort = conn.open(dev.ambient.hbone.HboneHeaders.connect(vip(REVIEWS, 1234), null, null));
            noPort.await(10, TimeUnit.SECONDS);
            assertEquals(400, ((dev.ambient.hbone.HboneException) noPort.cause()).status());
        } finally {
            conn.close();
        }
    }
}
