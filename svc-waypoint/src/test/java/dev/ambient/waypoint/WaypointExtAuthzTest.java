package dev.ambient.waypoint;

import static dev.ambient.waypoint.MeshFixtures.client;
import static dev.ambient.waypoint.MeshFixtures.key;
import static dev.ambient.waypoint.MeshFixtures.pod;
import static dev.ambient.waypoint.MeshFixtures.service;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.l7.ExtAuthzGrpc;
import dev.ambient.proto.l7.ExtAuthzHttp;
import dev.ambient.proto.l7.ExtAuthzProvider;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.L7Operation;
import dev.ambient.proto.l7.L7Rule;
import dev.ambient.proto.workload.Action;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.StringMatch;
import dev.ambient.proto.workload.Workload;
import dev.ambient.waypoint.state.WaypointState;
import io.micrometer.prometheus.PrometheusConfig;
import io.micrometer.prometheus.PrometheusMeterRegistry;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * AuthorizationPolicy action CUSTOM through a real waypoint, against authorizers that are not
 * ours: an HTTP one written on Python's standard library, a gRPC one on grpcio (Debian's
 * python3-grpcio, the proto compiled by python3-grpc-tools from our shared-proto file). The
 * authorizer's deny (status, headers, body) reaches the client; its allow puts its headers into
 * the forwarded request, replacing the client's; CUSTOM runs before DENY and ALLOW and only for
 * the requests its rules match; timeouts and an unreachable authorizer give statusOnError, or
 * let the request through with failOpen; a slow authorizer holds no event loop.
 */
class WaypointExtAuthzTest {

    static final String NS = "demo";
    static final int HBONE = 57508;
    static final int ENDPOINT_HBONE = 57518;
    static final int POD_PORT = 57580;
    static final String AUTHZ_IP = "127.0.78.50";
    static final int AUTHZ_HTTP = 57590;
    static final int AUTHZ_GRPC = 57591;
    static final SpiffeId SOURCE = new SpiffeId("cluster.local", NS, "productpage");
    static final SpiffeId WAYPOINT = new SpiffeId("cluster.local", NS, "waypoint");
    static final Service PAGE = service("page", NS, "127.0.77.10", 9080, POD_PORT, "http");
    static final String TARGET = "Service/demo/" + PAGE.getHostname();

    @TempDir
    static Path dir;
    static HboneTestBox box;
    static WaypointNode waypoint;
    static PrometheusMeterRegistry registry;
    static HboneTestBox.Backend backend;
    static Process httpAuthorizer;
    static Process grpcAuthorizer;
    static InetSocketAddress page;
    static final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();

    static ExtAuthzProvider.Builder provider(String name, int port, int timeoutMs) {
        return ExtAuthzProvider.newBuilder().setName(name).setService("ext-authz.demo.svc.cluster.local")
                .setPort(port).setMeshService(true).addEndpoints(AUTHZ_IP + ":" + port).setTimeoutMs(timeoutMs);
    }

    static StringMatch exact(String s) {
        return StringMatch.newBuilder().setExact(s).build();
    }

    static StringMatch prefix(String s) {
        return StringMatch.newBuilder().setPrefix(s).build();
    }

    static L7Authorization policy(String name, Action action, ExtAuthzProvider provider, StringMatch... paths) {
        L7Authorization.Builder b = L7Authorization.newBuilder().setName(name).setNamespace(NS).setAction(action)
                .addTargets(TARGET).addRules(L7Rule.newBuilder().addTo(L7Operation.newBuilder().addAllPaths(List.of(paths))));
        if (provider != null) {
            b.setProvider(provider);
        }
        return b.build();
    }

    static Process python(String script, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("/usr/bin/python3",
                Path.of(WaypointExtAuthzTest.class.getResource("/" + script).toURI()).toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String first = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)).readLine();
        assertEquals("listening", first, script + " did not start");
        return p;
    }

    @BeforeAll
    static void start() throws Exception {
        httpAuthorizer = python("ext-authz-http.py", AUTHZ_IP, Integer.toString(AUTHZ_HTTP));
        Path protoRoot = Path.of(System.getProperty("user.dir")).resolve("../shared-proto/src/main/proto").normalize();
        Path out = dir.resolve("grpc-gen");
        java.nio.file.Files.createDirectories(out);
        grpcAuthorizer = python("ext-authz-grpc.py", protoRoot.toString(), out.toString(), AUTHZ_IP,
                Integer.toString(AUTHZ_GRPC));

        box = new HboneTestBox(dir);
        registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        waypoint = box.waypoint("127.0.76.1", HBONE, ENDPOINT_HBONE, Map.of("waypoint.ext-authz.max-in-flight", "4"),
                registry);

        ExtAuthzProvider httpAuthz = provider("http-authz", AUTHZ_HTTP, 5_000).setHttp(ExtAuthzHttp.newBuilder()
                .setPathPrefix("/check")
                .addIncludeRequestHeadersInCheck(exact("x-ext-authz")).addIncludeRequestHeadersInCheck(exact("x-deny-status"))
                .putIncludeAdditionalHeadersInCheck("x-from", "waypoint")
                .addHeadersToUpstreamOnAllow(exact("x-user")).addHeadersToUpstreamOnAllow(prefix("x-seen-"))
                .addHeadersToDownstreamOnAllow(exact("x-ext-authz-check-result"))).build();
        ExtAuthzProvider open = provider("slow-open", AUTHZ_HTTP, 300).setFailOpen(true)
                .setHttp(ExtAuthzHttp.getDefaultInstance()).build();
        ExtAuthzProvider closed = provider("slow-closed", AUTHZ_HTTP, 300).setStatusOnError(503)
                .setHttp(ExtAuthzHttp.getDefaultInstance()).build();
        ExtAuthzProvider patient = provider("patient", AUTHZ_HTTP, 10_000).setHttp(ExtAuthzHttp.newBuilder()
                .addIncludeRequestHeadersInCheck(exact("x-ext-authz"))).build();
        ExtAuthzProvider unreachable = ExtAuthzProvider.newBuilder().setName("unreachable").setService("gone")
                .setPort(1).setMeshService(true).addEndpoints("127.0.78.99:57599").setTimeoutMs(2_000)
                .setHttp(ExtAuthzHttp.getDefaultInstance()).build();
        ExtAuthzProvider noEndpoint = unreachable.toBuilder().setName("no-endpoint").clearEndpoints().build();
        ExtAuthzProvider grpc = provider("grpc-authz", AUTHZ_GRPC, 5_000).setGrpc(ExtAuthzGrpc.getDefaultInstance())
                .build();
        ExtAuthzProvider grpcSlow = provider("grpc-slow", AUTHZ_GRPC, 300).setGrpc(ExtAuthzGrpc.getDefaultInstance())
                .build();

        Workload pagePod = pod("page", NS, "page", "127.0.78.1", key(PAGE), 9080, POD_PORT);
        Workload productpage = client("productpage", NS, "productpage", "127.0.0.1");
        waypoint.store().replace(WaypointState.of(List.of(pagePod, productpage), List.of(PAGE), List.of(), List.of(
                policy("a-http", Action.CUSTOM, httpAuthz, prefix("/headers"), exact("/deny-too")),
                policy("b-open", Action.CUSTOM, open, prefix("/open/")),
                policy("c-closed", Action.CUSTOM, closed, prefix("/closed/")),
                policy("d-patient", Action.CUSTOM, patient, prefix("/hold/")),
                policy("e-unreachable", Action.CUSTOM, unreachable, exact("/unreachable")),
                policy("f-no-endpoint", Action.CUSTOM, noEndpoint, exact("/no-endpoint")),
                policy("g-grpc", Action.CUSTOM, grpc, prefix("/grpc")),
                policy("h-grpc-slow", Action.CUSTOM, grpcSlow, prefix("/gslow/")),
                policy("deny-too", Action.DENY, null, exact("/deny-too")),
                policy("allow-some", Action.ALLOW, null, prefix("/headers"), exact("/deny-too"), exact("/public"),
                        prefix("/open/"), prefix("/closed/"), prefix("/hold/"), exact("/unreachable"),
                        exact("/no-endpoint"), prefix("/grpc"), prefix("/gslow/")))));

        box.endpointServer(new InetSocketAddress("127.0.78.1", ENDPOINT_HBONE), new SpiffeId("cluster.local", NS, "page"));
        backend = box.backend(new InetSocketAddress("127.0.78.1", POD_PORT), ex -> HboneTestBox.Reply.ok("page"));
        page = box.clientTunnel(new InetSocketAddress("127.0.76.1", 57501), SOURCE,
                new InetSocketAddress("127.0.76.1", HBONE), WAYPOINT, new InetSocketAddress("127.0.77.10", 9080));
    }

    @AfterAll
    static void stop() throws Exception {
        if (box != null) {
            box.close();
        }
        for (Process p : new Process[] {httpAuthorizer, grpcAuthorizer}) {
            if (p != null) {
                p.destroyForcibly();
            }
        }
    }

    static HttpResponse<String> get(String path, String... headers) throws Exception {
        return send(path, headers).get();
    }

    static CompletableFuture<HttpResponse<String>> send(String path, String... headers) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.76.1:" + page.getPort() + path))
                .timeout(Duration.ofSeconds(20));
        for (int i = 0; i < headers.length; i += 2) {
            b.header(headers[i], headers[i + 1]);
        }
        return http.sendAsync(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    /** The values of a header in the last request the backend got (the JDK server capitalizes names). */
    static List<String> backendSaw(String name) {
        Map<String, List<String>> last = backend.headers.get(backend.headers.size() - 1);
        return last.entrySet().stream().filter(e -> e.getKey().equalsIgnoreCase(name)).findFirst()
                .map(Map.Entry::getValue).orElse(null);
    }

    static double checks(String provider, String outcome) {
        var c = registry.find("waypoint_ext_authz_checks_total").tag("provider", provider).tag("outcome", outcome)
                .counter();
        return c == null ? 0 : c.count();
    }

    @Test
    void httpAllowPassesTheAuthorizersHeadersUpstreamReplacingTheClients() throws Exception {
        int before = backend.requests.get();
        HttpResponse<String> r = get("/headers?q=1", "x-ext-authz", "allow", "x-user", "mallory",
                "x-secret", "not-for-the-authorizer", "authorization", "Bearer t");
        assertEquals(200, r.statusCode(), r.body());
        assertEquals("page", r.body());
        assertEquals(before + 1, backend.requests.get());
        assertEquals(List.of("alice"), backendSaw("x-user"), "the client's x-user replaced, not appended");
        assertEquals(List.of("/check/headers?q=1"), backendSaw("x-seen-path"), "pathPrefix + the request's path");
        assertEquals(List.of("waypoint"), backendSaw("x-seen-from"), "includeAdditionalHeadersInCheck");
        String seen = backendSaw("x-seen-headers").getFirst();
        assertTrue(seen.contains("x-ext-authz") && seen.contains("authorization"), seen);
        assertFalse(seen.contains("x-secret"), "only the headers the provider includes: " + seen);
        assertNull(backendSaw("x-ext-authz-check-result"), "not listed in headersToUpstreamOnAllow");
        assertEquals("allowed", r.headers().firstValue("x-ext-authz-check-result").orElse(null),
                "headersToDownstreamOnAllow");
        assertTrue(checks("http-authz", "allow") >= 1);
    }

    @Test
    void httpDenyGivesTheClientTheAuthorizersStatusHeadersAndBody() throws Exception {
        int before = backend.requests.get();
        HttpResponse<String> r = get("/headers", "x-deny-status", "418");
        assertEquals(418, r.statusCode());
        assertEquals("denied", r.headers().firstValue("x-ext-authz-check-result").orElse(null));
        assertEquals("text/plain; charset=utf-8", r.headers().firstValue("content-type").orElse(null));
        assertTrue(r.body().startsWith("denied by ext_authz for not found header"), r.body());
        assertEquals(before, backend.requests.get(), "the application never saw it");
        assertTrue(checks("http-authz", "deny") >= 1);
        assertEquals(200, get("/headers", "x-ext-authz", "allow").statusCode(), "a good client still gets through");
    }

    @Test
    void anAuthorizersOversizedAnswerFailsTheCheckInsteadOfBeingHeld() throws Exception {
        double errors = checks("http-authz", "error");
        HttpResponse<String> r = get("/headers/huge");
        assertEquals(403, r.statusCode(), "statusOnError (403), not the authorizer's answer");
        assertTrue(r.body().length() < 1024, "the 4 MiB body was not passed on: " + r.body().length());
        assertEquals(errors + 1, checks("http-authz", "error"));
        assertEquals(200, get("/headers", "x-ext-authz", "allow").statusCode(), "a good client still gets through");
    }

    @Test
    void customRunsBeforeDenyAndAllowAndOnlyForTheRequestsItsRulesMatch() throws Exception {
        // CUSTOM denies first: the authorizer's answer, not the DENY policy's.
        HttpResponse<String> first = get("/deny-too");
        assertEquals(403, first.statusCode());
        assertEquals("denied", first.headers().firstValue("x-ext-authz-check-result").orElse(null));
        // CUSTOM allows, then DENY still denies.
        HttpResponse<String> then = get("/deny-too", "x-ext-authz", "allow");
        assertEquals(403, then.statusCode());
        assertEquals("RBAC: access denied", then.body());
        // Not matched by any CUSTOM rule: the authorizer is not asked.
        double asked = checks("http-authz", "allow") + checks("http-authz", "deny");
        assertEquals(200, get("/public").statusCode());
        HttpResponse<String> other = get("/other", "x-ext-authz", "allow");
        assertEquals(403, other.statusCode(), "ALLOW still applies");
        assertEquals("RBAC: access denied", other.body());
        assertEquals(asked, checks("http-authz", "allow") + checks("http-authz", "deny"));
    }

    @Test
    void aTimeoutDeniesWithStatusOnErrorOrPassesWithFailOpen() throws Exception {
        long t0 = System.nanoTime();
        HttpResponse<String> closed = get("/closed/slow");
        long closedMs = (System.nanoTime() - t0) / 1_000_000;
        assertEquals(503, closed.statusCode(), closed.body());
        assertTrue(closedMs < 2_500, "bounded by the provider's 300 ms timeout, not the authorizer's 3 s: " + closedMs);
        int before = backend.requests.get();
        HttpResponse<String> open = get("/open/slow");
        assertEquals(200, open.statusCode(), open.body());
        assertEquals(before + 1, backend.requests.get());
        assertTrue(checks("slow-closed", "timeout") >= 1);
        assertTrue(checks("slow-open", "timeout") >= 1);
    }

    @Test
    void anUnreachableAuthorizerDeniesWith403() throws Exception {
        int before = backend.requests.get();
        HttpResponse<String> r = get("/unreachable", "x-ext-authz", "allow");
        assertEquals(403, r.statusCode(), r.body());
        HttpResponse<String> none = get("/no-endpoint", "x-ext-authz", "allow");
        assertEquals(403, none.statusCode(), "a mesh service without endpoints is unreachable, not looked up by name");
        assertEquals(before, backend.requests.get());
        assertTrue(checks("unreachable", "error") >= 1);
        assertEquals(200, get("/public").statusCode());
    }

    @Test
    void grpcAllowAndDenyAgainstGrpcio() throws Exception {
        HttpResponse<String> ok = get("/grpc/x", "x-ext-authz", "allow", "x-user", "mallory", "x-drop-me", "1");
        assertEquals(200, ok.statusCode(), ok.body());
        assertEquals(List.of("alice-grpc"), backendSaw("x-user"));
        assertNull(backendSaw("x-drop-me"), "headers_to_remove");
        assertEquals(List.of("spiffe://cluster.local/ns/demo/sa/productpage"), backendSaw("x-seen-principal"));
        assertEquals(List.of("GET /grpc/x"), backendSaw("x-seen-method-path"));
        assertEquals("allowed", ok.headers().firstValue("x-ext-authz-check-result").orElse(null));
        int before = backend.requests.get();
        HttpResponse<String> denied = get("/grpc/x", "x-deny-status", "451");
        assertEquals(451, denied.statusCode());
        assertEquals("denied", denied.headers().firstValue("x-ext-authz-check-result").orElse(null));
        assertEquals("denied by the gRPC authorizer\n", denied.body());
        assertEquals(before, backend.requests.get());
        assertTrue(checks("grpc-authz", "allow") >= 1 && checks("grpc-authz", "deny") >= 1);
        HttpResponse<String> slow = get("/gslow/slow", "x-ext-authz", "allow");
        assertEquals(403, slow.statusCode(), "deadline exceeded, failOpen off: 403");
        assertTrue(checks("grpc-slow", "timeout") >= 1);
    }

    @Test
    void slowChecksHoldNoEventLoopAndAreBoundedInNumber() throws Exception {
        List<CompletableFuture<HttpResponse<String>>> held = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            held.add(send("/hold/slow", "x-ext-authz", "allow"));
        }
        Thread.sleep(300);
        long t0 = System.nanoTime();
        assertEquals(200, get("/public").statusCode());
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms < 1_500, "other requests go on while checks wait: " + ms + " ms");
        int allowed = 0;
        int refused = 0;
        for (var f : held) {
            int s = f.get().statusCode();
            if (s == 200) {
                allowed++;
            } else if (s == 403) {
                refused++;
            }
        }
        assertEquals(6, allowed + refused);
        assertEquals(4, allowed, "max-in-flight (4) reach the authorizer, allowed after its 3 s");
        assertTrue(checks("patient", "overloaded") >= 2, "beyond it, statusOnError at once");
    }
}
