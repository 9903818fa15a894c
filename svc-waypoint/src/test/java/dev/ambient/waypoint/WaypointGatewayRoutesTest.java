package dev.ambient.waypoint;

import static dev.ambient.waypoint.MeshFixtures.client;
import static dev.ambient.waypoint.MeshFixtures.denyPathPrefix;
import static dev.ambient.waypoint.MeshFixtures.key;
import static dev.ambient.waypoint.MeshFixtures.pod;
import static dev.ambient.waypoint.MeshFixtures.service;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.l7.HeaderMutation;
import dev.ambient.proto.l7.PathMatch;
import dev.ambient.proto.l7.PathRewrite;
import dev.ambient.proto.l7.PrefixRewrite;
import dev.ambient.proto.l7.Redirect;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.RouteMatch;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.l7.TcpRoute;
import dev.ambient.proto.l7.UrlRewrite;
import dev.ambient.proto.l7.WeightedBackend;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.waypoint.state.WaypointState;
import io.micrometer.prometheus.PrometheusConfig;
import io.micrometer.prometheus.PrometheusMeterRegistry;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * HTTPRoute filters as a user sees them through a waypoint, with curl as the client (HTTP/1.1
 * and h2c) and a real HTTP server as the application, which records the target and Host it
 * received: the Location of each redirect (scheme, host, port, path, status as the Gateway API's
 * conformance cases describe them), the path and Host the application gets after a URLRewrite,
 * response headers set by the route, and a DENY that still holds for a path reached by rewrite.
 * And a TCPRoute's weighted split, counted at two TCP applications; a GRPCRoute's method match
 * and weighted split, as svc-xds translates it, with nghttp as the gRPC client.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class WaypointGatewayRoutesTest {

    static final String NS = "demo";
    static final int HBONE = 58008;
    static final int ENDPOINT_HBONE = 58108;
    static final int POD_PORT = 58280;
    static final SpiffeId SOURCE = new SpiffeId("cluster.local", NS, "productpage");
    static final SpiffeId WAYPOINT = new SpiffeId("cluster.local", NS, "waypoint");
    static final Service WEB = service("web", NS, "127.0.97.10", 80, POD_PORT, "http");
    static final String HOST = WEB.getHostname();
    // Declared tcp: the waypoint forwards streams, by the TCPRoute, to db-v1 and db-v2 (db itself has no endpoint).
    static final Service DB = service("db", NS, "127.0.97.20", 5432, 58381, "tcp");
    static final Service DB_V1 = service("db-v1", NS, "127.0.97.21", 5432, 58381, "tcp");
    static final Service DB_V2 = service("db-v2", NS, "127.0.97.22", 5432, 58381, "tcp");
    // Declared grpc, served by python-h2 gRPC echo servers that name themselves.
    static final Service GRPC = service("grpc", NS, "127.0.97.30", 50051, 58382, "grpc");
    static final Service GRPC_V1 = service("grpc-v1", NS, "127.0.97.31", 50051, 58382, "grpc");
    static final Service GRPC_V2 = service("grpc-v2", NS, "127.0.97.32", 50051, 58382, "grpc");
    static final List<Process> grpcServers = new ArrayList<>();
    static InetSocketAddress grpc;
    static EchoServer dbV1;
    static EchoServer dbV2;
    static InetSocketAddress db;

    @TempDir
    static Path dir;
    static HboneTestBox box;
    static HboneTestBox.Backend app;
    /** "target host" of each request the application received. */
    static final List<String> received = Collections.synchronizedList(new ArrayList<>());
    static InetSocketAddress web;

    static Route.Builder prefixRoute(String name, String prefix) {
        return Route.newBuilder().setName(name).addMatches(RouteMatch.newBuilder().setPath(PathMatch.newBuilder()
                .setKind(PathMatch.Kind.PREFIX).setValue(prefix))).addBackends(WeightedBackend.newBuilder()
                .setService(key(WEB)).setPort(80).setWeight(1));
    }

    static PathRewrite prefixRewrite(String matched, String replacement) {
        return PathRewrite.newBuilder().setPrefix(PrefixRewrite.newBuilder().setMatchedPrefix(matched)
                .setReplacement(replacement)).build();
    }

    @BeforeAll
    static void start() throws Exception {
        box = new HboneTestBox(dir);
        WaypointNode waypoint = box.waypoint("127.0.97.1", HBONE, ENDPOINT_HBONE, Map.of(),
                new PrometheusMeterRegistry(PrometheusConfig.DEFAULT));
        Workload pod = pod("web", NS, "web", "127.0.98.1", key(WEB), 80, POD_PORT);
        Workload productpage = client("productpage", NS, "productpage", "127.0.0.1");
        // In the Gateway API's precedence order, as svc-xds sends them (longest prefix first).
        ServiceRoutes routes = ServiceRoutes.newBuilder().setServiceHostname(HOST).setServiceNamespace(NS)
                .addRoutes(prefixRoute("strip-prefix", "/strip-prefix").setRewrite(UrlRewrite.newBuilder()
                        .setPath(prefixRewrite("/strip-prefix", "/"))))
                .addRoutes(prefixRoute("public-admin", "/public-admin").setRewrite(UrlRewrite.newBuilder()
                        .setPath(prefixRewrite("/public-admin", "/admin"))))
                .addRoutes(prefixRoute("full", "/full/one").setRewrite(UrlRewrite.newBuilder()
                        .setHostname("internal.example").setPath(PathRewrite.newBuilder().setFullPath("/one"))))
                .addRoutes(prefixRoute("secure", "/secure").setRedirect(Redirect.newBuilder().setScheme("https")
                        .setStatusCode(301)))
                .addRoutes(prefixRoute("moved", "/moved").setRedirect(Redirect.newBuilder()
                        .setHostname("example.org").setPort(8083).setStatusCode(308)
                        .setPath(prefixRewrite("/moved", "/new"))))
                .addRoutes(prefixRoute("old", "/old").setRedirect(Redirect.newBuilder().setStatusCode(302)
                        .setPath(PathRewrite.newBuilder().setFullPath("/fresh"))))
                .addRoutes(prefixRoute("see-other", "/form").setRedirect(Redirect.newBuilder().setStatusCode(303)
                        .setPort(8080)))
                .addRoutes(prefixRoute("temporary", "/tmp").setRedirect(Redirect.newBuilder().setStatusCode(307)
                        .setScheme("http").setPort(80)))
                .addRoutes(prefixRoute("rest", "/").addResponseHeaderMutations(HeaderMutation.newBuilder()
                        .setName("x-frame-options").setValue("DENY")).addResponseHeaderMutations(
                                HeaderMutation.newBuilder().setOp(HeaderMutation.Op.REMOVE).setName("x-internal")))
                .build();
        Workload dbPodV1 = pod("db-v1", NS, "db", "127.0.98.2", key(DB_V1), 5432, 58381);
        Workload dbPodV2 = pod("db-v2", NS, "db", "127.0.98.3", key(DB_V2), 5432, 58381);
        ServiceRoutes dbRoutes = ServiceRoutes.newBuilder().setServiceHostname(DB.getHostname()).setServiceNamespace(NS)
                .addTcpRoutes(TcpRoute.newBuilder().setName("demo/db-split").addPorts(5432)
                        .addBackends(WeightedBackend.newBuilder().setService(key(DB_V1)).setPort(5432).setWeight(80))
                        .addBackends(WeightedBackend.newBuilder().setService(key(DB_V2)).setPort(5432).setWeight(20)))
                .build();
        Workload grpcPodV1 = pod("grpc-v1", NS, "grpc", "127.0.98.4", key(GRPC_V1), 50051, 58382);
        Workload grpcPodV2 = pod("grpc-v2", NS, "grpc", "127.0.98.5", key(GRPC_V2), 50051, 58382);
        // What svc-xds makes of a GRPCRoute (GrpcRouteTranslationTest): method Exact
        // demo.Greeter/SayHello to v2; every other call split 3:1 between v1 and v2.
        ServiceRoutes grpcRoutes = ServiceRoutes.newBuilder().setServiceHostname(GRPC.getHostname())
                .setServiceNamespace(NS)
                .addRoutes(Route.newBuilder().setName("demo/greeter/0").addMatches(RouteMatch.newBuilder()
                        .setPath(PathMatch.newBuilder().setKind(PathMatch.Kind.EXACT)
                                .setValue("/demo.Greeter/SayHello")))
                        .addBackends(WeightedBackend.newBuilder().setService(key(GRPC_V2)).setPort(50051).setWeight(1)))
                .addRoutes(Route.newBuilder().setName("demo/greeter/1").addMatches(RouteMatch.newBuilder()
                        .setPath(PathMatch.newBuilder().setKind(PathMatch.Kind.PREFIX).setValue("/")))
                        .addBackends(WeightedBackend.newBuilder().setService(key(GRPC_V1)).setPort(50051).setWeight(3))
                        .addBackends(WeightedBackend.newBuilder().setService(key(GRPC_V2)).setPort(50051).setWeight(1)))
                .build();
        waypoint.store().replace(WaypointState.of(List.of(pod, productpage, dbPodV1, dbPodV2, grpcPodV1, grpcPodV2),
                List.of(WEB, DB, DB_V1, DB_V2, GRPC, GRPC_V1, GRPC_V2), List.of(routes, dbRoutes, grpcRoutes),
                List.of(denyPathPrefix("no-admin", NS, "Service/demo/" + HOST, "/admin"))));
        box.endpointServer(new InetSocketAddress("127.0.98.1", ENDPOINT_HBONE), new SpiffeId("cluster.local", NS, "web"));
        app = box.backend(new InetSocketAddress("127.0.98.1", POD_PORT), ex -> {
            received.add(ex.getRequestURI().toString() + " " + ex.getRequestHeaders().getFirst("Host"));
            ex.getResponseHeaders().set("x-internal", "leaks");
            return HboneTestBox.Reply.ok("app");
        });
        box.endpointServer(new InetSocketAddress("127.0.98.2", ENDPOINT_HBONE), new SpiffeId("cluster.local", NS, "db"));
        box.endpointServer(new InetSocketAddress("127.0.98.3", ENDPOINT_HBONE), new SpiffeId("cluster.local", NS, "db"));
        dbV1 = new EchoServer(new InetSocketAddress("127.0.98.2", 58381));
        dbV2 = new EchoServer(new InetSocketAddress("127.0.98.3", 58381));
        db = box.clientTunnel(new InetSocketAddress("127.0.97.1", 58102), SOURCE,
                new InetSocketAddress("127.0.97.1", HBONE), WAYPOINT,
                new InetSocketAddress(WaypointState.address(DB.getAddresses(0).getAddress().toByteArray()), 5432));
        for (String[] server : new String[][] {{"127.0.98.4", "v1"}, {"127.0.98.5", "v2"}}) {
            box.endpointServer(new InetSocketAddress(server[0], ENDPOINT_HBONE), new SpiffeId("cluster.local", NS, "grpc"));
            Path script = Path.of(WaypointGatewayRoutesTest.class.getResource("/h2c-grpc-echo.py").toURI());
            Process p = new ProcessBuilder("/usr/bin/python3", script.toString(), server[0], "58382", server[1])
                    .redirectErrorStream(true).start();
            grpcServers.add(p);
            assertEquals("listening", new java.io.BufferedReader(new java.io.InputStreamReader(p.getInputStream(),
                    StandardCharsets.UTF_8)).readLine(), "python-h2 server (Debian python3-h2) did not start");
        }
        grpc = box.clientTunnel(new InetSocketAddress("127.0.97.1", 58103), SOURCE,
                new InetSocketAddress("127.0.97.1", HBONE), WAYPOINT,
                new InetSocketAddress(WaypointState.address(GRPC.getAddresses(0).getAddress().toByteArray()), 50051));
        web = box.clientTunnel(new InetSocketAddress("127.0.97.1", 58101), SOURCE,
                new InetSocketAddress("127.0.97.1", HBONE), WAYPOINT,
                new InetSocketAddress(WaypointState.address(WEB.getAddresses(0).getAddress().toByteArray()), 80));
    }

    @AfterAll
    static void stop() throws Exception {
        grpcServers.forEach(Process::destroyForcibly);
        for (EchoServer e : new EchoServer[] {dbV1, dbV2}) {
            if (e != null) {
                e.close();
            }
        }
        if (box != null) {
            box.close();
        }
    }

    /** curl's status, Location and the rest of the response head; the client names the service as a pod would. */
    static String curl(String protocol, String target, String... more) throws Exception {
        List<String> command = new ArrayList<>(List.of("curl", "-sS", protocol, "--path-as-is", "-o", "/dev/null",
                "-D", "-", "-H", "Host: " + HOST));
        command.addAll(List.of(more));
        command.add("http://" + web.getHostString() + ":" + web.getPort() + target);
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        assertTrue(p.waitFor(20, TimeUnit.SECONDS), "curl did not finish");
        return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).replace("\r", "");
    }

    static String status(String head) {
        String[] words = head.lines().findFirst().orElse("").split(" ");
        return words.length > 1 ? words[1] : head;
    }

    static String header(String head, String name) {
        return head.lines().filter(l -> l.toLowerCase().startsWith(name.toLowerCase() + ":"))
                .map(l -> l.substring(name.length() + 1).trim()).findFirst().orElse(null);
    }

    @Test
    void redirectsAnswerWithTheLocationTheGatewayApiDescribes() throws Exception {
        int before = app.requests.get();
        record Case(String target, String status, String location) {
        }
        List<Case> cases = List.of(
                // Scheme https and no port: the well-known port, so none in the Location.
                new Case("/secure/login?next=/home", "301", "https://" + HOST + "/secure/login?next=/home"),
                // Hostname, port and prefix replacement; 308 keeps the method.
                new Case("/moved/a/b", "308", "http://example.org:8083/new/a/b"),
                // Full path replaced, the query kept; 302 by default; service port 80 is http's own.
                new Case("/old/x?q=1", "302", "http://" + HOST + "/fresh?q=1"),
                new Case("/form", "303", "http://" + HOST + ":8080/form"),
                new Case("/tmp/x", "307", "http://" + HOST + "/tmp/x"));
        for (String protocol : List.of("--http1.1", "--http2-prior-knowledge")) {
            for (Case c : cases) {
                String head = curl(protocol, c.target());
                assertEquals(c.status(), status(head), protocol + " " + c.target() + ":\n" + head);
                assertEquals(c.location(), header(head, "location"), protocol + " " + c.target());
            }
        }
        assertEquals(before, app.requests.get(), "a redirect never reaches the application");
    }

    @Test
    void urlRewriteChangesWhatTheApplicationReceives() throws Exception {
        for (String protocol : List.of("--http1.1", "--http2-prior-knowledge")) {
            received.clear();
            assertEquals("200", status(curl(protocol, "/strip-prefix/three?x=1")));
            assertEquals("200", status(curl(protocol, "/strip-prefix")));
            assertEquals("200", status(curl(protocol, "/full/one/two?keep=yes")));
            assertEquals("200", status(curl(protocol, "/untouched/path")));
            assertEquals(List.of("/three?x=1 " + HOST, "/ " + HOST, "/one?keep=yes internal.example",
                    "/untouched/path " + HOST), List.copyOf(received), protocol);
        }
    }

    @Test
    void responseHeaderModifierSetsAndRemoves() throws Exception {
        String head = curl("--http1.1", "/page");
        assertEquals("200", status(head));
        assertEquals("DENY", header(head, "x-frame-options"));
        assertEquals(null, header(head, "x-internal"), head);
    }

    /**
     * Istio judges authorization on the request as sent, before route rewrites; we do too, and in
     * addition judge the DENY policies on the request as the application will receive it. So a
     * route cannot lead a request into a path a DENY keeps out.
     */
    @Test
    void aDenyHoldsForAPathReachedByRewrite() throws Exception {
        Path body = dir.resolve("body.bin");
        java.nio.file.Files.write(body, new byte[4 << 20]);
        int before = app.requests.get();
        for (String protocol : List.of("--http1.1", "--http2-prior-knowledge")) {
            String h = curl(protocol, "/admin/users");
            assertEquals("403", status(h), protocol + h);
            h = curl(protocol, "/public-admin/users");
            assertEquals("403", status(h), protocol + h);
        }
        // Refused while its body is still coming. (Over h2c the stream is reset with NO_ERROR after
        // the 403, which Debian's curl 7.88 reports as error 92 rather than the answer.)
        String h = curl("--http1.1", "/public-admin/upload", "--data-binary", "@" + body);
        assertEquals("403", status(h), h);
        assertEquals(before, app.requests.get(), "the application never saw /admin");
        assertEquals("200", status(curl("--http1.1", "/public-admin-not-a-segment")), "a good request still passes");
    }

    @Test
    void aTcpRouteSplitsStreamsByWeight() throws Exception {
        int n = 300;
        int v1Before = dbV1.connections.get();
        int v2Before = dbV2.connections.get();
        for (int i = 0; i < n; i++) {
            try (java.net.Socket s = new java.net.Socket()) {
                s.connect(db, 5_000);
                s.setSoTimeout(10_000);
                byte[] ping = ("ping " + i).getBytes(StandardCharsets.UTF_8);
                s.getOutputStream().write(ping);
                // Read the echo before ending: a FIN that comes with the first bytes, before the
                // test's client tunnel is up, races its setup (a reset once in a full suite run).
                assertEquals("ping " + i, new String(s.getInputStream().readNBytes(ping.length),
                        StandardCharsets.UTF_8), "stream " + i + " echoed whole");
            }
        }
        int toV1 = dbV1.connections.get() - v1Before;
        int toV2 = dbV2.connections.get() - v2Before;
        System.out.println("TCPRoute 80/20 over " + n + " streams: db-v1 " + toV1 + ", db-v2 " + toV2);
        assertEquals(n, toV1 + toV2, "every stream reached one of the two backends");
        // Binomial(300, 0.2): mean 60, sd 6.9; 4.3 sd either side.
        assertTrue(toV2 >= 30 && toV2 <= 90, "db-v2 got " + toV2 + " of " + n);
    }

    /** nghttp's gRPC calls on one h2c connection: the x-served-by of each response, in order. */
    static List<String> grpcCalls(String... paths) throws Exception {
        Path body = dir.resolve("grpc-body");
        java.nio.file.Files.writeString(body, "hello");
        List<String> command = new ArrayList<>(List.of("nghttp", "-v", "-H", "content-type: application/grpc", "-H",
                "te: trailers", "-d", body.toString()));
        for (int i = 0; i < paths.length; i++) {
            // nghttp fetches a URI once however often it is named: a query makes each call its own.
            command.add("http://" + grpc.getHostString() + ":" + grpc.getPort() + paths[i] + "?call=" + i);
        }
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "nghttp did not finish");
        assertEquals(paths.length, out.lines().filter(l -> l.contains("grpc-status: 0")).count(),
                "every call ended with grpc-status 0:\n" + out);
        return out.lines().filter(l -> l.contains("x-served-by: ")).map(l -> l.substring(l.indexOf("x-served-by: ") + 13)
                .trim()).toList();
    }

    @Test
    void aGrpcRouteMatchesTheMethodAndSplitsTheRestByWeight() throws Exception {
        assertEquals(List.of("v2", "v2", "v2"), grpcCalls("/demo.Greeter/SayHello", "/demo.Greeter/SayHello",
                "/demo.Greeter/SayHello"), "the exact method goes to v2 only");
        String[] others = new String[200];
        java.util.Arrays.fill(others, "/demo.Greeter/Other");
        List<String> servedBy = grpcCalls(others);
        assertEquals(200, servedBy.size(), servedBy.toString());
        long toV2 = servedBy.stream().filter("v2"::equals).count();
        System.out.println("GRPCRoute 3:1 over 200 calls: v1 " + (200 - toV2) + ", v2 " + toV2);
        // Binomial(200, 0.25): mean 50, sd 6.1; 4 sd either side.
        assertTrue(toV2 >= 25 && toV2 <= 75, "v2 got " + toV2 + " of 200");
    }
}
