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
    /** The authorizer pod in the mesh (STRICT): its ports refuse plaintext; its ztunnel delivers to AUTHZ_IP. */
    static final String MESH_AUTHZ_IP = "127.0.78.60";
    /** A mesh authorizer endpoint whose ztunnel presents another identity than svc-xds gave. */
    static final String IMPOSTOR_IP = "127.0.78.62";
    static final SpiffeId AUTHZ_ID = new SpiffeId("cluster.local", NS, "ext-authz");
    static final SpiffeId SOURCE = new SpiffeId("cluster.local", NS, "productpage");
    static final SpiffeId WAYPOINT = new SpiffeId("cluster.local", NS, "waypoint");
    static final Service PAGE = service("page", NS, "127.0.77.10", 9080, POD_PORT, "http");
    static final String TARGET = "Service/demo/" + PAGE.getHostname();
    /** maxRequestBytes of the body-taking providers (but body-big's 1 MiB). */
    static final int BODY_LIMIT = 4096;
    /** waypoint.ext-authz.max-buffered-body-bytes here: three 600 kB bodies (each held with its copy) fit, not four. */
    static final long BODY_BUDGET = 4L << 20;

    @TempDir
    static Path dir;
    static HboneTestBox box;
    static WaypointNode waypoint;
    static PrometheusMeterRegistry registry;
    static HboneTestBox.Backend backend;
    static Process httpAuthorizer;
    static Process grpcAuthorizer;
    static InetSocketAddress page;
    static final List<StrictPort> strictPorts = new ArrayList<>();
    static final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();

    static ExtAuthzProvider.Builder provider(String name, int port, int timeoutMs) {
        return ExtAuthzProvider.newBuilder().setName(name).setService("ext-authz.demo.svc.cluster.local")
                .setPort(port).setMeshService(true).addEndpoints(AUTHZ_IP + ":" + port).setTimeoutMs(timeoutMs);
    }

    /** A provider whose one endpoint is a mesh workload: svc-xds gives the identity it must prove. */
    static ExtAuthzProvider.Builder meshProvider(String name, String ip, int port) {
        return ExtAuthzProvider.newBuilder().setName(name).setService("ext-authz.demo.svc.cluster.local").setPort(port)
                .setMeshService(true).addEndpoints(ip + ":" + port).putHboneIdentities(ip + ":" + port, AUTHZ_ID.uri())
                .setTimeoutMs(5_000);
    }

    /**
     * A pod port under STRICT PeerAuthentication as its ztunnel treats plaintext: accepted, then
     * dropped. Records what arrived in clear (what anyone on the path could read).
     */
    static final class StrictPort implements AutoCloseable {
        final java.net.ServerSocket socket;
        final java.util.concurrent.atomic.AtomicInteger connections = new java.util.concurrent.atomic.AtomicInteger();
        final StringBuffer cleartext = new StringBuffer();

        StrictPort(InetSocketAddress at) throws java.io.IOException {
            socket = new java.net.ServerSocket();
            socket.setReuseAddress(true);
            socket.bind(at);
            Thread.ofVirtual().start(this::run);
        }

        private void run() {
            while (!socket.isClosed()) {
                try (java.net.Socket s = socket.accept()) {
                    connections.incrementAndGet();
                    s.setSoTimeout(500);
                    byte[] b = new byte[8192];
                    int n = s.getInputStream().read(b);
                    if (n > 0) {
                        cleartext.append(new String(b, 0, n, StandardCharsets.ISO_8859_1));
                    }
                } catch (java.io.IOException e) {
                    // a timeout or a reset: the connection is dropped either way
                }
            }
        }

        @Override
        public void close() throws java.io.IOException {
            socket.close();
        }
    }

    static int plaintextToTheMeshAuthorizer() {
        return strictPorts.stream().mapToInt(p -> p.connections.get()).sum();
    }

    static String cleartextSeen() {
        StringBuilder all = new StringBuilder();
        strictPorts.forEach(p -> all.append(p.cleartext));
        return all.toString();
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
        waypoint = box.waypoint("127.0.76.1", HBONE, ENDPOINT_HBONE, Map.of("waypoint.ext-authz.max-in-flight", "4",
                "waypoint.ext-authz.max-tunnels", "16", "waypoint.ext-authz.tunnel-idle-timeout", "2s",
                "waypoint.ext-authz.max-buffered-body-bytes", Long.toString(BODY_BUDGET),
                "waypoint.ext-authz.body-read-timeout", "3s"), registry);

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

        ExtAuthzProvider meshHttp = meshProvider("mesh-http", MESH_AUTHZ_IP, AUTHZ_HTTP).setHttp(ExtAuthzHttp.newBuilder()
                .addIncludeRequestHeadersInCheck(exact("x-ext-authz")).addHeadersToUpstreamOnAllow(exact("x-user"))
                .addHeadersToUpstreamOnAllow(prefix("x-seen-"))).build();
        ExtAuthzProvider meshGrpc = meshProvider("mesh-grpc", MESH_AUTHZ_IP, AUTHZ_GRPC)
                .setGrpc(ExtAuthzGrpc.getDefaultInstance()).build();
        ExtAuthzProvider impostor = meshProvider("impostor", IMPOSTOR_IP, AUTHZ_HTTP).setHttp(ExtAuthzHttp.newBuilder()
                .addIncludeRequestHeadersInCheck(exact("x-ext-authz"))).build();

        // includeRequestBodyInCheck: 4 KiB, refused beyond (413) or sent in part; gRPC as text or bytes.
        ExtAuthzHttp.Builder bodyHttp = ExtAuthzHttp.newBuilder().addIncludeRequestHeadersInCheck(exact("x-ext-authz"))
                .addHeadersToUpstreamOnAllow(prefix("x-seen-")).setMaxRequestBytes(BODY_LIMIT);
        ExtAuthzProvider bodyAuthz = provider("body-http", AUTHZ_HTTP, 5_000).setHttp(bodyHttp).build();
        ExtAuthzProvider partialAuthz = provider("body-partial", AUTHZ_HTTP, 5_000)
                .setHttp(bodyHttp.clone().setAllowPartialMessage(true)).build();
        ExtAuthzProvider bigAuthz = provider("body-big", AUTHZ_HTTP, 10_000)
                .setHttp(bodyHttp.clone().setMaxRequestBytes(1 << 20)).build();
        ExtAuthzProvider grpcBody = provider("body-grpc", AUTHZ_GRPC, 5_000).setGrpc(ExtAuthzGrpc.newBuilder()
                .setMaxRequestBytes(BODY_LIMIT)).build();
        ExtAuthzProvider grpcRaw = provider("body-grpc-raw", AUTHZ_GRPC, 5_000).setGrpc(ExtAuthzGrpc.newBuilder()
                .setMaxRequestBytes(BODY_LIMIT).setAllowPartialMessage(true).setPackAsBytes(true)).build();

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
                policy("i-mesh-http", Action.CUSTOM, meshHttp, prefix("/mesh-http")),
                policy("j-mesh-grpc", Action.CUSTOM, meshGrpc, prefix("/mesh-grpc")),
                policy("k-impostor", Action.CUSTOM, impostor, prefix("/impostor")),
                policy("l-body", Action.CUSTOM, bodyAuthz, prefix("/body/")),
                policy("m-partial", Action.CUSTOM, partialAuthz, prefix("/partial/")),
                policy("n-big", Action.CUSTOM, bigAuthz, prefix("/big/")),
                policy("o-grpc-body", Action.CUSTOM, grpcBody, prefix("/gbody/")),
                policy("p-grpc-raw", Action.CUSTOM, grpcRaw, prefix("/graw/")),
                policy("deny-too", Action.DENY, null, exact("/deny-too")),
                policy("allow-some", Action.ALLOW, null, prefix("/headers"), exact("/deny-too"), exact("/public"),
                        prefix("/open/"), prefix("/closed/"), prefix("/hold/"), exact("/unreachable"),
                        exact("/no-endpoint"), prefix("/grpc"), prefix("/gslow/"), prefix("/mesh-http"),
                        prefix("/mesh-grpc"), prefix("/impostor"), prefix("/body/"), prefix("/partial/"),
                        prefix("/big/"), prefix("/gbody/"), prefix("/graw/")))));

        // The authorizer pods under STRICT: plaintext to their ports is accepted and dropped by the
        // ztunnel; HBONE to their node port is delivered to the authorizer processes.
        for (String ip : List.of(MESH_AUTHZ_IP, IMPOSTOR_IP)) {
            for (int port : List.of(AUTHZ_HTTP, AUTHZ_GRPC)) {
                strictPorts.add(new StrictPort(new InetSocketAddress(ip, port)));
            }
        }
        java.util.function.UnaryOperator<InetSocketAddress> intoThePod = t -> new InetSocketAddress(AUTHZ_IP, t.getPort());
        box.endpointServer(new InetSocketAddress(MESH_AUTHZ_IP, ENDPOINT_HBONE), AUTHZ_ID, intoThePod);
        box.endpointServer(new InetSocketAddress(IMPOSTOR_IP, ENDPOINT_HBONE), new SpiffeId("cluster.local", NS,
                "impostor"), intoThePod);

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
        for (StrictPort p : strictPorts) {
            p.close();
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

    // ------------------------------------------------------------- mesh authorizers through HBONE

    @Test
    void aMeshAuthorizerUnderStrictIsAskedThroughHboneAsTheWaypointNeverInClear() throws Exception {
        int connects = box.endpointConnects.size();
        HttpResponse<String> r = get("/mesh-http/x", "x-ext-authz", "allow", "authorization", "Bearer secret-token-1");
        assertEquals(200, r.statusCode(), r.body());
        assertEquals(List.of("alice"), backendSaw("x-user"), "the authorizer's allow reached the request");
        assertTrue(backendSaw("x-seen-headers").getFirst().contains("authorization"), "the check carried the credential");
        assertEquals(0, plaintextToTheMeshAuthorizer(), "nothing reached the authorizer pod's port in plaintext: "
                + cleartextSeen());
        assertFalse(cleartextSeen().contains("secret-token-1"));
        assertTrue(box.endpointConnects.subList(connects, box.endpointConnects.size()).contains(
                WAYPOINT.uri() + " -> " + MESH_AUTHZ_IP + ":" + AUTHZ_HTTP), "an HBONE CONNECT as the waypoint: "
                + box.endpointConnects);
        int before = backend.requests.get();
        assertEquals(403, get("/mesh-http/x").statusCode(), "its deny too");
        assertEquals(before, backend.requests.get());
        assertTrue(checks("mesh-http", "allow") >= 1 && checks("mesh-http", "deny") >= 1);
    }

    @Test
    void aMeshGrpcAuthorizerUnderStrictIsAskedThroughHbone() throws Exception {
        HttpResponse<String> ok = get("/mesh-grpc/x", "x-ext-authz", "allow", "authorization", "Bearer secret-token-2");
        assertEquals(200, ok.statusCode(), ok.body());
        assertEquals(List.of("alice-grpc"), backendSaw("x-user"));
        assertEquals(451, get("/mesh-grpc/x", "x-deny-status", "451").statusCode(), "its deny too");
        assertEquals(0, plaintextToTheMeshAuthorizer(), "nothing in plaintext: " + cleartextSeen());
        assertTrue(box.endpointConnects.contains(WAYPOINT.uri() + " -> " + MESH_AUTHZ_IP + ":" + AUTHZ_GRPC),
                box.endpointConnects.toString());
    }

    @Test
    void aMeshAuthorizerEndpointProvingAnotherIdentityIsNeverAsked() throws Exception {
        double errors = checks("impostor", "error");
        HttpResponse<String> r = get("/impostor/x", "x-ext-authz", "allow", "authorization", "Bearer secret-token-3");
        assertEquals(403, r.statusCode(), "statusOnError: " + r.body());
        assertEquals(errors + 1, checks("impostor", "error"));
        assertFalse(box.endpointConnects.stream().anyMatch(c -> c.contains(IMPOSTOR_IP)),
                "no CONNECT sent to a peer that is not " + AUTHZ_ID.uri() + ": " + box.endpointConnects);
        assertEquals(0, plaintextToTheMeshAuthorizer(), "no plaintext fallback: " + cleartextSeen());
        assertEquals(200, get("/mesh-http/x", "x-ext-authz", "allow").statusCode(), "a good authorizer still answers");
    }

    /** Writes {@code request} to the bridge and reads its answer (up to {@code bytes}, or to its close). */
    static byte[] bridgeExchange(java.net.Socket s, byte[] request, int bytes) throws Exception {
        s.setSoTimeout(10_000);
        s.getOutputStream().write(request);
        s.getOutputStream().flush();
        return s.getInputStream().readNBytes(bytes);
    }

    static java.net.Socket toBridge() throws Exception {
        return new java.net.Socket(waypoint.authorizerBridge().address().getAddress(),
                waypoint.authorizerBridge().address().getPort());
    }

    @Test
    void theBridgeRefusesToTunnelToAnythingButAConfiguredMeshAuthorizer() throws Exception {
        int connects = box.endpointConnects.size();
        // The page pod is a mesh workload the waypoint may reach, but not an authorizer: refused.
        try (java.net.Socket s = toBridge()) {
            String answer = new String(bridgeExchange(s, "CONNECT 127.0.78.1:57580 HTTP/1.1\r\nHost: x\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII), 4096), StandardCharsets.US_ASCII);
            assertTrue(answer.startsWith("HTTP/1.1 403"), answer);
        }
        try (java.net.Socket s = toBridge()) {
            assertEquals("[5, 0]", java.util.Arrays.toString(bridgeExchange(s, new byte[] {5, 1, 0}, 2)));
            byte[] reply = bridgeExchange(s, new byte[] {5, 1, 0, 1, 127, 0, 78, 1, (byte) (57580 >> 8), (byte) 57580}, 64);
            assertEquals(2, reply[1], "SOCKS5: not allowed by ruleset");
        }
        // A name is never resolved, even one that would be an authorizer.
        try (java.net.Socket s = toBridge()) {
            String answer = new String(bridgeExchange(s, "CONNECT localhost:57590 HTTP/1.1\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII), 4096), StandardCharsets.US_ASCII);
            assertTrue(answer.startsWith("HTTP/1.1 400"), answer);
        }
        assertEquals(connects, box.endpointConnects.size(), "no HBONE CONNECT was made for them: " + box.endpointConnects);
        // A configured mesh authorizer: tunnelled, and HTTP flows through it.
        try (java.net.Socket s = toBridge()) {
            String answer = new String(bridgeExchange(s, ("CONNECT " + MESH_AUTHZ_IP + ":" + AUTHZ_HTTP
                    + " HTTP/1.1\r\n\r\n").getBytes(StandardCharsets.US_ASCII), 39), StandardCharsets.US_ASCII);
            assertEquals("HTTP/1.1 200 Connection established\r\n\r\n", answer);
            String check = new String(bridgeExchange(s, "GET /x HTTP/1.1\r\nHost: a\r\nx-ext-authz: allow\r\nConnection: close\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII), 1 << 16), StandardCharsets.US_ASCII);
            assertTrue(check.startsWith("HTTP/1.1 200") && check.contains("x-user: alice"), check);
        }
    }

    /**
     * Anything in the pod can make the bridge refuse, as fast as it connects: each refusal is
     * counted, but its reason gets one log line per 10 s, which says how many were not logged.
     */
    @Test
    void theBridgeLogsItsRefusalsAtMostOnceEveryTenSecondsPerReasonAndCountsEach() throws Exception {
        int refusals = 20;
        double before = bridgeRefusals("not_allowed");
        List<String> lines = new java.util.concurrent.CopyOnWriteArrayList<>();
        java.util.logging.Handler capture = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                lines.add(r instanceof org.jboss.logmanager.ExtLogRecord ext ? ext.getFormattedMessage() : r.getMessage());
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        java.util.logging.Logger bridgeLog = java.util.logging.Logger.getLogger(
                dev.ambient.waypoint.extauthz.MeshAuthorizerBridge.class.getName());
        bridgeLog.addHandler(capture);
        try {
            for (int i = 0; i < refusals; i++) {
                try (java.net.Socket s = toBridge()) {
                    String answer = new String(bridgeExchange(s, "CONNECT 127.0.78.1:57580 HTTP/1.1\r\n\r\n"
                            .getBytes(StandardCharsets.US_ASCII), 4096), StandardCharsets.US_ASCII);
                    assertTrue(answer.startsWith("HTTP/1.1 403"), answer);
                }
            }
        } finally {
            bridgeLog.removeHandler(capture);
        }
        List<String> refusedLines = lines.stream().filter(l -> l.contains("refused")).toList();
        System.out.printf("%d refused CONNECTs to the bridge: %d log lines %s, counted %.0f%n", refusals,
                refusedLines.size(), refusedLines, bridgeRefusals("not_allowed") - before);
        assertTrue(refusedLines.size() <= 1, "at most one line for a reason per 10 s: " + refusedLines);
        assertEquals(refusals, bridgeRefusals("not_allowed") - before,
                "every refusal counted in waypoint_ext_authz_bridge_refusals_total{reason=not_allowed}");
        // The bridge still tunnels to a configured authorizer.
        try (java.net.Socket s = toBridge()) {
            String answer = new String(bridgeExchange(s, ("CONNECT " + MESH_AUTHZ_IP + ":" + AUTHZ_HTTP
                    + " HTTP/1.1\r\n\r\n").getBytes(StandardCharsets.US_ASCII), 39), StandardCharsets.US_ASCII);
            assertEquals("HTTP/1.1 200 Connection established\r\n\r\n", answer);
        }
    }

    static double bridgeRefusals(String reason) {
        var c = registry.find("waypoint_ext_authz_bridge_refusals_total").tag("reason", reason).counter();
        return c == null ? 0 : c.count();
    }

    @Test
    void theBridgeBoundsHandshakesIdleTunnelsAndConnections() throws Exception {
        // A tunnel left idle is closed after tunnel-idle-timeout (2 s here); a silent connection after connect-timeout (5 s).
        try (java.net.Socket idle = toBridge(); java.net.Socket silent = toBridge()) {
            String answer = new String(bridgeExchange(idle, ("CONNECT " + MESH_AUTHZ_IP + ":" + AUTHZ_HTTP
                    + " HTTP/1.1\r\n\r\n").getBytes(StandardCharsets.US_ASCII), 39), StandardCharsets.US_ASCII);
            assertTrue(answer.startsWith("HTTP/1.1 200"), answer);
            long t0 = System.nanoTime();
            assertEquals(-1, idle.getInputStream().read(), "the idle tunnel was closed");
            long idleMs = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(idleMs >= 1_500 && idleMs < 8_000, "closed after ~2 s idle: " + idleMs);
            silent.setSoTimeout(15_000);
            assertEquals(-1, silent.getInputStream().read(), "the silent connection was closed");
        }
        // At max-tunnels (16) a new connection is closed at once (long before a handshake's 5 s).
        List<java.net.Socket> held = new ArrayList<>();
        try {
            for (int i = 0; i < 40 && waypoint.authorizerBridge().openConnections() < 16; i++) {
                held.add(toBridge());
                Thread.sleep(20);
            }
            assertEquals(16, waypoint.authorizerBridge().openConnections());
            try (java.net.Socket over = toBridge()) {
                over.setSoTimeout(3_000);
                int read;
                try {
                    read = over.getInputStream().read();
                } catch (java.net.SocketException reset) {
                    read = -1;
                }
                assertEquals(-1, read, "closed at accept");
            }
        } finally {
            for (java.net.Socket s : held) {
                s.close();
            }
        }
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (waypoint.authorizerBridge().openConnections() >= 16 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(200, get("/mesh-http/x", "x-ext-authz", "allow").statusCode(), "a good check gets through after");
    }

    // ------------------------------------------------------------- includeRequestBodyInCheck

    static byte[] randomBody(int n, long seed) {
        byte[] b = new byte[n];
        new java.util.Random(seed).nextBytes(b); // binary, not text: nothing may be decoded on the way
        return b;
    }

    static String sha256(byte[] b, int n) throws Exception {
        return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                .digest(java.util.Arrays.copyOf(b, n)));
    }

    static CompletableFuture<HttpResponse<String>> post(String path, HttpRequest.BodyPublisher body, boolean expectContinue,
            String... headers) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.76.1:" + page.getPort() + path))
                .timeout(Duration.ofSeconds(30)).expectContinue(expectContinue).POST(body);
        for (int i = 0; i < headers.length; i += 2) {
            b.header(headers[i], headers[i + 1]);
        }
        return http.sendAsync(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static HttpResponse<String> post(String path, byte[] body, String... headers) throws Exception {
        return post(path, HttpRequest.BodyPublishers.ofByteArray(body), false, headers).get();
    }

    /** A body without Content-Length: HTTP/1.1 chunked, so its length is known only as it arrives. */
    static HttpResponse<String> postChunked(String path, byte[] body, String... headers) throws Exception {
        return post(path, HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(body)), false,
                headers).get();
    }

    static byte[] lastBody() {
        return backend.bodies.get(backend.bodies.size() - 1);
    }

    static double bodyRefusals(String reason) {
        var c = registry.find("waypoint_ext_authz_body_refusals_total").tag("reason", reason).counter();
        return c == null ? 0 : c.count();
    }

    @Test
    void aBodyWithinTheLimitIsWhatTheAuthorizerJudgesAndWhatTheApplicationGets() throws Exception {
        byte[] body = randomBody(3_000, 1);
        HttpResponse<String> r = post("/body/x", body, "x-ext-authz", "allow");
        assertEquals(200, r.statusCode(), r.body());
        assertEquals(List.of("3000"), backendSaw("x-seen-body-length"), "the authorizer got the whole body");
        assertEquals(List.of(sha256(body, body.length)), backendSaw("x-seen-body-sha256"));
        assertEquals(List.of("false"), backendSaw("x-seen-partial"), "x-envoy-auth-partial-body, as Envoy");
        assertTrue(java.util.Arrays.equals(body, lastBody()), "the application got exactly the judged bytes");
        // Chunked (no Content-Length), and a client that waits for 100 Continue: the same.
        byte[] chunked = randomBody(4_096, 2);
        assertEquals(200, postChunked("/body/x", chunked, "x-ext-authz", "allow").statusCode());
        assertEquals(List.of(sha256(chunked, chunked.length)), backendSaw("x-seen-body-sha256"));
        assertTrue(java.util.Arrays.equals(chunked, lastBody()), "exactly maxRequestBytes is within the limit");
        byte[] waits = randomBody(2_000, 3);
        HttpResponse<String> continued = post("/body/x", HttpRequest.BodyPublishers.ofByteArray(waits), true,
                "x-ext-authz", "allow").get();
        assertEquals(200, continued.statusCode(), continued.body());
        assertEquals(List.of(sha256(waits, waits.length)), backendSaw("x-seen-body-sha256"));
        assertTrue(java.util.Arrays.equals(waits, lastBody()));
    }

    @Test
    void aBodyOverTheLimitIsRefusedWith413AndReachesNeitherAuthorizerNorApplication() throws Exception {
        int before = backend.requests.get();
        double asked = checks("body-http", "allow") + checks("body-http", "deny");
        double refused = bodyRefusals("too_large");
        HttpResponse<String> declared = post("/body/x", randomBody(BODY_LIMIT + 1, 4), "x-ext-authz", "allow");
        assertEquals(413, declared.statusCode(), declared.body());
        HttpResponse<String> chunked = postChunked("/body/x", randomBody(20_000, 5), "x-ext-authz", "allow");
        assertEquals(413, chunked.statusCode(), "found over the limit as it arrived: " + chunked.body());
        assertEquals(before, backend.requests.get(), "the application saw nothing");
        assertEquals(asked, checks("body-http", "allow") + checks("body-http", "deny"), "the authorizer was not asked");
        assertEquals(refused + 2, bodyRefusals("too_large"));
        assertEquals(200, post("/body/x", randomBody(100, 6), "x-ext-authz", "allow").statusCode(),
                "a good client still gets through");
    }

    @Test
    void withPartialMessagesTheAuthorizerJudgesThePrefixAndTheApplicationGetsAll() throws Exception {
        byte[] body = randomBody(100_000, 7);
        HttpResponse<String> r = post("/partial/x", body, "x-ext-authz", "allow");
        assertEquals(200, r.statusCode(), r.body());
        assertEquals(List.of(Integer.toString(BODY_LIMIT)), backendSaw("x-seen-body-length"));
        assertEquals(List.of(sha256(body, BODY_LIMIT)), backendSaw("x-seen-body-sha256"), "its first maxRequestBytes");
        assertEquals(List.of("true"), backendSaw("x-seen-partial"));
        assertTrue(java.util.Arrays.equals(body, lastBody()), "the application got the whole body");
    }

    @Test
    void anAuthorizerDenyingOnTheBodysContentKeepsTheRequestFromTheApplication() throws Exception {
        int before = backend.requests.get();
        byte[] body = "{\"op\": \"forbidden\"}".getBytes(StandardCharsets.UTF_8);
        HttpResponse<String> r = post("/body/x", body, "x-ext-authz", "allow");
        assertEquals(403, r.statusCode());
        assertEquals("denied: the body says forbidden\n", r.body());
        HttpResponse<String> g = post("/gbody/x", body, "x-ext-authz", "allow");
        assertEquals(403, g.statusCode(), "the gRPC authorizer too: " + g.body());
        assertEquals(before, backend.requests.get(), "the application saw neither");
        assertEquals(200, post("/body/x", "{\"op\": \"read\"}".getBytes(StandardCharsets.UTF_8), "x-ext-authz", "allow")
                .statusCode(), "a good client still gets through");
    }

    @Test
    void aGrpcAuthorizerGetsTheBodyAsTextOrAsRawBytes() throws Exception {
        byte[] text = "{\"amount\": 10, \"to\": \"bob\", \"note\": \"caf\u00e9\"}".getBytes(StandardCharsets.UTF_8);
        HttpResponse<String> r = post("/gbody/x", text, "x-ext-authz", "allow");
        assertEquals(200, r.statusCode(), r.body());
        assertEquals(List.of(sha256(text, text.length)), backendSaw("x-seen-body-sha256"));
        assertEquals(List.of("0"), backendSaw("x-seen-raw"), "in HttpRequest.body");
        assertEquals(List.of(Integer.toString(text.length)), backendSaw("x-seen-size"));
        assertEquals(List.of("false"), backendSaw("x-seen-partial"));
        assertTrue(java.util.Arrays.equals(text, lastBody()));
        // Not UTF-8 and no packAsBytes: never sent altered (replacement characters) to be judged: the check fails.
        int before = backend.requests.get();
        HttpResponse<String> binary = post("/gbody/x", randomBody(1_000, 8), "x-ext-authz", "allow");
        assertEquals(403, binary.statusCode(), "statusOnError: " + binary.body());
        assertEquals(before, backend.requests.get());
        // packAsBytes and partial: raw_body holds the first maxRequestBytes; the application gets all.
        byte[] raw = randomBody(50_000, 9);
        HttpResponse<String> packed = post("/graw/x", raw, "x-ext-authz", "allow");
        assertEquals(200, packed.statusCode(), packed.body());
        assertEquals(List.of("1"), backendSaw("x-seen-raw"));
        assertEquals(List.of(sha256(raw, BODY_LIMIT)), backendSaw("x-seen-body-sha256"));
        assertEquals(List.of("true"), backendSaw("x-seen-partial"));
        assertTrue(java.util.Arrays.equals(raw, lastBody()));
    }

    @Test
    void anAuthorizerWithoutABodySettingIsAskedWithoutOneAndTheBodyStreams() throws Exception {
        byte[] body = randomBody(300_000, 10);
        HttpResponse<String> r = post("/headers/post", body, "x-ext-authz", "allow");
        assertEquals(200, r.statusCode(), r.body());
        assertEquals(List.of("0"), backendSaw("x-seen-body-length"), "no body in the check");
        assertEquals(List.of("-"), backendSaw("x-seen-partial"), "no x-envoy-auth-partial-body either");
        assertTrue(java.util.Arrays.equals(body, lastBody()));
    }

    /** nghttp (h2c, prior knowledge) POSTs {@code body}; its verbose output. */
    static String nghttp(String path, byte[] body) throws Exception {
        Path file = dir.resolve("h2-body-" + System.nanoTime());
        java.nio.file.Files.write(file, body);
        Process p = new ProcessBuilder("nghttp", "-v", "-H", "x-ext-authz: allow", "-d", file.toString(),
                "http://127.0.76.1:" + page.getPort() + path).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
        assertTrue(p.waitFor(30, java.util.concurrent.TimeUnit.SECONDS), "nghttp did not finish");
        return out;
    }

    @Test
    void anHttp2ClientsBodyIsHeldJudgedAndForwardedTheSame() throws Exception {
        byte[] body = randomBody(40_000, 11); // more than one DATA frame, more than the limit
        String partial = nghttp("/partial/h2", body);
        assertTrue(partial.contains(":status: 200"), partial);
        assertEquals(List.of(sha256(body, BODY_LIMIT)), backendSaw("x-seen-body-sha256"));
        assertTrue(java.util.Arrays.equals(body, lastBody()), "the application got the whole body over HTTP/2");
        byte[] small = randomBody(3_000, 12);
        assertTrue(nghttp("/body/h2", small).contains(":status: 200"));
        assertEquals(List.of(sha256(small, small.length)), backendSaw("x-seen-body-sha256"));
        assertTrue(java.util.Arrays.equals(small, lastBody()));
        int before = backend.requests.get();
        String over = nghttp("/body/h2", body);
        assertTrue(over.contains(":status: 413"), over);
        assertEquals(before, backend.requests.get());
    }

    @Test
    void manyLargeBodiesPastTheWaypointsBoundAreRefusedWith503AndAGoodRequestStillPasses() throws Exception {
        double refusedBefore = bodyRefusals("budget");
        int n = 8;
        List<byte[]> bodies = new ArrayList<>();
        List<CompletableFuture<HttpResponse<String>>> sent = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            bodies.add(randomBody(600_000, 100 + i));
            // /slow: the authorizer takes 3 s, so the bodies are held all at once.
            sent.add(post("/big/slow", HttpRequest.BodyPublishers.ofByteArray(bodies.get(i)), false, "x-ext-authz", "allow"));
        }
        int ok = 0;
        int refused = 0;
        for (var f : sent) {
            HttpResponse<String> r = f.get();
            if (r.statusCode() == 200) {
                ok++;
            } else {
                assertEquals(503, r.statusCode(), r.body());
                assertTrue(r.body().contains("holds too many request bodies"), r.body());
                refused++;
            }
        }
        System.out.printf("%d concurrent 600 kB bodies under a %d-byte bound: %d allowed, %d refused%n", n, BODY_BUDGET,
                ok, refused);
        assertTrue(refused >= 1, "8 × 1.2 MB held (body and copy) cannot fit in 4 MiB");
        assertTrue(ok >= 1, "some were held and allowed");
        assertEquals(refused, bodyRefusals("budget") - refusedBefore, "each refusal counted");
        // Every body the application got is one that was sent, whole.
        synchronized (backend.bodies) {
            for (byte[] got : backend.bodies.subList(backend.bodies.size() - ok, backend.bodies.size())) {
                assertTrue(bodies.stream().anyMatch(b -> java.util.Arrays.equals(b, got)), "a whole body, as sent");
            }
        }
        assertEquals(200, post("/body/x", randomBody(1_000, 13), "x-ext-authz", "allow").statusCode(),
                "a good request still gets through");
        assertEquals(0, registry.find("waypoint_ext_authz_held_body_bytes").gauge().value(), "nothing left held");
    }

    @Test
    void aClientTricklingItsBodyIsCutByTheBodyReadTimeout() throws Exception {
        int before = backend.requests.get();
        double timeouts = bodyRefusals("timeout");
        long t0 = System.nanoTime();
        String answer;
        try (java.net.Socket s = new java.net.Socket("127.0.76.1", page.getPort())) {
            s.setSoTimeout(20_000);
            var out = s.getOutputStream();
            out.write(("POST /body/x HTTP/1.1\r\nHost: page\r\nx-ext-authz: allow\r\nContent-Length: 4000\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            out.flush();
            // 10 bytes every 500 ms: never silent long enough for the request timeout (30 s).
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    for (int i = 0; i < 60; i++) {
                        out.write("0123456789".getBytes(StandardCharsets.US_ASCII));
                        out.flush();
                        Thread.sleep(500);
                    }
                } catch (Exception e) {
                    // the waypoint closed it
                }
            });
            answer = new String(s.getInputStream().readNBytes(12), StandardCharsets.US_ASCII);
            writer.interrupt();
        }
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertEquals("HTTP/1.1 408", answer);
        assertTrue(ms >= 2_500 && ms < 10_000, "cut after the 3 s body read timeout: " + ms + " ms");
        assertEquals(before, backend.requests.get());
        assertEquals(timeouts + 1, bodyRefusals("timeout"));
        assertEquals(0, registry.find("waypoint_ext_authz_held_body_bytes").gauge().value(), "nothing left held");
        assertEquals(200, post("/body/x", randomBody(100, 14), "x-ext-authz", "allow").statusCode());
    }

    /**
     * The held body sits queued when the route's retry copy begins: the copy must take it, or a
     * retry sends the endpoint a body without its start (before: the retry got 0 of 3,000 bytes).
     */
    @Test
    void aRetryAfterTheCheckSendsTheWholeHeldBodyAgain() throws Exception {
        java.util.concurrent.atomic.AtomicBoolean failed = new java.util.concurrent.atomic.AtomicBoolean();
        var normal = backend.behaviour;
        backend.behaviour = ex -> ex.getRequestURI().getPath().equals("/body/retry") && failed.compareAndSet(false, true)
                ? new HboneTestBox.Reply(503, "once", 0) : HboneTestBox.Reply.ok("page");
        try {
            byte[] body = randomBody(3_000, 15);
            int before = backend.requests.get();
            // PUT: idempotent, so sent again though its body reached the endpoint.
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.76.1:" + page.getPort()
                    + "/body/retry")).timeout(Duration.ofSeconds(30)).header("x-ext-authz", "allow")
                    .PUT(HttpRequest.BodyPublishers.ofByteArray(body)).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            assertEquals(before + 2, backend.requests.get(), "503 once, then Istio's default retry");
            assertTrue(java.util.Arrays.equals(body, lastBody()), "the retry carried the whole body: "
                    + lastBody().length + " bytes");
        } finally {
            backend.behaviour = normal;
        }
    }
}
