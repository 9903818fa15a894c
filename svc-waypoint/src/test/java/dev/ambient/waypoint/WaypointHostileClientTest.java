package dev.ambient.waypoint;

import static dev.ambient.waypoint.MeshFixtures.client;
import static dev.ambient.waypoint.MeshFixtures.key;
import static dev.ambient.waypoint.MeshFixtures.service;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.ambient.identity.Pem;
import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.L7Operation;
import dev.ambient.proto.l7.L7Rule;
import dev.ambient.proto.l7.L7Source;
import dev.ambient.proto.l7.RetryPolicy;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.l7.WeightedBackend;
import dev.ambient.proto.workload.Action;
import dev.ambient.proto.workload.Cidr;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.StringMatch;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.waypoint.state.WaypointState;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.micrometer.prometheus.PrometheusConfig;
import io.micrometer.prometheus.PrometheusMeterRegistry;
import io.netty.buffer.PooledByteBufAllocator;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Attacks on the waypoint by a client holding a valid mesh certificate, on the wire: real HBONE
 * tunnels (the client's certificate), a real waypoint, real endpoint HBONE servers, and an
 * application on a raw socket that writes down exactly what reached it. Clients are raw sockets,
 * curl and python-h2. After each hostile case a good client still gets through.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class WaypointHostileClientTest {

    static final String NS = "demo";
    static final int HBONE = 58008;
    static final int ENDPOINT_HBONE = 58108;
    static final int APP_HTTP = 58280;
    static final int APP_ECHO = 58290;
    static final SpiffeId CLIENT = new SpiffeId("cluster.local", NS, "productpage");
    static final SpiffeId WAYPOINT = new SpiffeId("cluster.local", NS, "waypoint");

    // One application pod behind every service: HTTP on APP_HTTP, echo on APP_ECHO.
    static final Service WEB = service("web", NS, "127.0.96.10", 80, APP_HTTP, "http");
    static final Service AUTO = service("auto", NS, "127.0.96.11", 8080, APP_HTTP, "");
    static final Service FWD = service("fwd", NS, "127.0.96.12", 80, APP_HTTP, "http");
    /** Its route retries: a copy of each request body is held while a retry may need it. */
    static final Service UPLOAD = service("upload", NS, "127.0.96.13", 80, APP_HTTP, "http");
    static final Service TCP_LOCKED = service("tcp-locked", NS, "127.0.96.20", 9000, APP_ECHO, "tcp");
    static final Service TCP_OPEN = service("tcp-open", NS, "127.0.96.21", 9000, APP_ECHO, "tcp");
    static final Service TCP_UNDECLARED = service("tcp-undeclared", NS, "127.0.96.22", 9000, APP_ECHO, "");
    static final String PAYMENTS_IP = "127.0.96.200";

    @TempDir
    static Path dir;
    static HboneTestBox box;
    static PrometheusMeterRegistry mainMetrics;
    static PrometheusMeterRegistry budgetMetrics;
    static RecordingBackend app;
    static EchoServer echo;
    static InetSocketAddress web;
    static InetSocketAddress auto;
    static InetSocketAddress fwd;
    static InetSocketAddress webAsPayments;
    static InetSocketAddress webWithBaggage;
    static InetSocketAddress tcpLocked;
    static InetSocketAddress tcpOpen;
    static InetSocketAddress tcpUndeclared;
    static InetSocketAddress budgetUpload;
    static InetSocketAddress unescapeWeb;
    static InetSocketAddress keepWeb;
    static InetSocketAddress redirectWeb;
    static final AtomicInteger baggageSerial = new AtomicInteger();

    @BeforeAll
    static void start() throws Exception {
        box = new HboneTestBox(dir);
        mainMetrics = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        budgetMetrics = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        List<WaypointNode> waypoints = List.of(
                box.waypoint("127.0.94.1", HBONE, ENDPOINT_HBONE, Map.of(
                        "waypoint.http.request-header-timeout", "1s",
                        "waypoint.http.request-timeout", "2s",
                        // Longer than the 2 s pause of the slow first byte, so that only policy can answer it.
                        "waypoint.http.idle-timeout", "3s"), mainMetrics),
                box.waypoint("127.0.94.2", HBONE, ENDPOINT_HBONE, Map.of(
                        "waypoint.http.retry-buffer-bytes", "524288",
                        "waypoint.http.max-buffered-body-bytes", "1048576",
                        "waypoint.http.request-timeout", "30s"), budgetMetrics),
                box.waypoint("127.0.94.3", HBONE, ENDPOINT_HBONE, Map.of(
                        "waypoint.http.path-normalization", "BASE",
                        "waypoint.http.escaped-slashes", "UNESCAPE_AND_FORWARD"), new SimpleMeterRegistry()),
                box.waypoint("127.0.94.4", HBONE, ENDPOINT_HBONE, Map.of(
                        "waypoint.http.escaped-slashes", "KEEP_UNCHANGED"), new SimpleMeterRegistry()),
                box.waypoint("127.0.94.5", HBONE, ENDPOINT_HBONE, Map.of(
                        "waypoint.http.escaped-slashes", "UNESCAPE_AND_REDIRECT"), new SimpleMeterRegistry()));

        Workload.Builder pod = Workload.newBuilder().setUid("Kubernetes//Pod/demo/app").setName("app").setNamespace(NS)
                .setServiceAccount("app").addAddresses(MeshFixtures.ip("127.0.95.1")).setWorkloadName("app")
                .setTunnelProtocol(TunnelProtocol.HBONE) // a mesh pod, as svc-xds says
                .setCanonicalName("app").setTrustDomain("cluster.local");
        for (Service s : List.of(WEB, AUTO, FWD, UPLOAD, TCP_LOCKED, TCP_OPEN, TCP_UNDECLARED)) {
            Port p = s.getPorts(0);
            pod.putServices(key(s), PortList.newBuilder().addPorts(Port.newBuilder()
                    .setServicePort(p.getServicePort()).setTargetPort(p.getTargetPort())).build());
        }
        // The client (127.0.0.1 on the wire) is not in the waypoint's configuration, as in a mesh
        // where svc-xds sends a waypoint only what it serves; another workload is.
        Workload payments = client("payments", NS, "payments", PAYMENTS_IP);
        List<L7Authorization> policies = List.of(
                policy("no-admin", Action.DENY, List.of(WEB, AUTO, TCP_UNDECLARED), L7Rule.newBuilder()
                        .addTo(L7Operation.newBuilder().addPaths(exact("/admin"))
                                .addPaths(StringMatch.newBuilder().setPrefix("/admin/"))).build()),
                // Policy judges the path the application gets, escapes and all.
                policy("no-encoded", Action.DENY, List.of(WEB), L7Rule.newBuilder()
                        .addTo(L7Operation.newBuilder().addPaths(exact("/files/a%20b"))
                                .addPaths(exact("/secret%2Fpath"))).build()),
                policy("only-10-9", Action.ALLOW, List.of(FWD), L7Rule.newBuilder()
                        .addFrom(L7Source.newBuilder().addIpBlocks(Cidr.newBuilder()
                                .setAddress(ByteString.copyFrom(new byte[] {10, 9, 0, 0})).setLength(16))).build()),
                policy("only-get", Action.ALLOW, List.of(TCP_LOCKED), L7Rule.newBuilder()
                        .addTo(L7Operation.newBuilder().addMethods("GET")).build()),
                policy("only-productpage", Action.ALLOW, List.of(TCP_OPEN), L7Rule.newBuilder()
                        .addFrom(L7Source.newBuilder().addPrincipals(exact(CLIENT.principal()))).build()));
        WaypointState state = WaypointState.of(List.of(pod.build(), payments),
                List.of(WEB, AUTO, FWD, UPLOAD, TCP_LOCKED, TCP_OPEN, TCP_UNDECLARED), List.of(ServiceRoutes.newBuilder()
                        .setServiceHostname(UPLOAD.getHostname()).setServiceNamespace(NS)
                        .addRoutes(Route.newBuilder().setName("retry").setRetry(RetryPolicy.newBuilder().setAttempts(2))
                                .addBackends(WeightedBackend.newBuilder().setService(key(UPLOAD)).setPort(80)
                                        .setWeight(1)))
                        .build()), policies);
        waypoints.forEach(w -> w.store().replace(state));

        box.endpointServer(new InetSocketAddress("127.0.95.1", ENDPOINT_HBONE), new SpiffeId("cluster.local", NS, "app"));
        app = new RecordingBackend(new InetSocketAddress("127.0.95.1", APP_HTTP));
        echo = new EchoServer(new InetSocketAddress("127.0.95.1", APP_ECHO));

        InetSocketAddress main = new InetSocketAddress("127.0.94.1", HBONE);
        web = tunnel(58201, main, WEB);
        auto = tunnel(58202, main, AUTO);
        tcpLocked = tunnel(58204, main, TCP_LOCKED);
        tcpOpen = tunnel(58205, main, TCP_OPEN);
        tcpUndeclared = tunnel(58206, main, TCP_UNDECLARED);
        // A client that says, in Forwarded, that it is someone else.
        fwd = box.clientTunnel(new InetSocketAddress("127.0.94.1", 58203), CLIENT, () -> main, WAYPOINT,
                vip(FWD), real -> new InetSocketAddress("10.9.9.9", 4242), () -> null);
        webAsPayments = box.clientTunnel(new InetSocketAddress("127.0.94.1", 58207), CLIENT, () -> main, WAYPOINT,
                vip(WEB), real -> new InetSocketAddress(PAYMENTS_IP, 4242), () -> null);
        // A client whose every connection claims another workload name in its baggage.
        webWithBaggage = box.clientTunnel(new InetSocketAddress("127.0.94.1", 58208), CLIENT, () -> main, WAYPOINT,
                vip(WEB), real -> real, () -> "k8s.namespace.name=demo,service.name=churn-"
                        + baggageSerial.incrementAndGet() + ",service.version=v" + baggageSerial.get());
        budgetUpload = tunnel(58211, new InetSocketAddress("127.0.94.2", HBONE), UPLOAD);
        unescapeWeb = tunnel(58221, new InetSocketAddress("127.0.94.3", HBONE), WEB);
        keepWeb = tunnel(58222, new InetSocketAddress("127.0.94.4", HBONE), WEB);
        redirectWeb = tunnel(58223, new InetSocketAddress("127.0.94.5", HBONE), WEB);
    }

    static InetSocketAddress tunnel(int port, InetSocketAddress waypoint, Service service) {
        return box.clientTunnel(new InetSocketAddress("127.0.94.1", port), CLIENT, waypoint, WAYPOINT, vip(service));
    }

    static InetSocketAddress vip(Service s) {
        return new InetSocketAddress(WaypointState.address(s.getAddresses(0).getAddress().toByteArray()),
                s.getPorts(0).getServicePort());
    }

    static StringMatch exact(String s) {
        return StringMatch.newBuilder().setExact(s).build();
    }

    static L7Authorization policy(String name, Action action, List<Service> targets, L7Rule rule) {
        L7Authorization.Builder b = L7Authorization.newBuilder().setName(name).setNamespace(NS).setAction(action)
                .addRules(rule);
        targets.forEach(s -> b.addTargets("Service/" + NS + "/" + s.getHostname()));
        return b.build();
    }

    @AfterAll
    static void stop() throws Exception {
        if (app != null) {
            app.close();
        }
        if (echo != null) {
            echo.close();
        }
        if (box != null) {
            box.close();
        }
    }

    /** A well-behaved request through the same tunnel afterwards: the waypoint still serves. */
    static void goodClientGetsThrough(InetSocketAddress tunnel) throws Exception {
        String path = "/good/" + System.nanoTime();
        try (RawClient c = new RawClient(tunnel)) {
            c.send("GET " + path + " HTTP/1.1\r\nhost: web\r\n\r\n");
            assertEquals(200, c.status(), "a good request after the hostile one");
        }
        assertTrue(app.saw("GET " + path + " "), "the good request reached the application");
    }

    static String run(String... command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), String.join(" ", command) + " did not finish");
        return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    }

    /** curl sends exactly this request target (no normalization of its own); returns the status code. */
    static String curlStatus(InetSocketAddress tunnel, String target) throws Exception {
        return run("curl", "-sS", "--max-time", "10", "--path-as-is", "--request-target", target, "-o", "/dev/null",
                "-w", "%{http_code} %{redirect_url}", "http://" + tunnel.getHostString() + ":" + tunnel.getPort() + "/");
    }

    static String h2c(String mode, InetSocketAddress tunnel, String path) throws Exception {
        Path script = Path.of(WaypointHostileClientTest.class.getResource("/h2c-hostile-client.py").toURI());
        return run("/usr/bin/python3", script.toString(), mode, tunnel.getHostString(),
                Integer.toString(tunnel.getPort()), path);
    }

    // ---------------------------------------------------------------- protocol selection and TCP

    @Test
    void aClientThatWaitsBeforeItsFirstByteIsStillJudgedByThePolicy() throws Exception {
        // A port declared http is HTTP, whenever the first byte comes.
        try (RawClient c = new RawClient(web)) {
            Thread.sleep(2_000);
            c.send("GET /admin HTTP/1.1\r\nhost: web\r\n\r\n");
            assertEquals(403, c.status(), "GET /admin after a 2 s pause on a port declared http");
        }
        // An undeclared port may sniff: after the sniff timeout the stream is TCP, and TCP meets the
        // policy as TCP: the DENY that names paths ignores them and denies the stream.
        try (RawClient c = new RawClient(auto)) {
            Thread.sleep(2_000);
            try {
                c.send("GET /admin HTTP/1.1\r\nhost: auto\r\n\r\n");
            } catch (java.io.IOException closedAlready) {
                // denied at the sniff timeout, before the client said anything
            }
            StringBuilder seen = new StringBuilder();
            long ms = c.millisUntilClosed(10_000, seen);
            System.out.printf("undeclared port, 2 s pause: the stream was TCP and closed after %d ms, answer '%s'%n",
                    ms, seen);
            assertTrue(ms >= 0, "the denied TCP stream is closed");
            assertFalse(seen.toString().contains("200"), seen.toString());
        }
        assertFalse(app.saw("/admin"), "the application never got /admin: " + app.requests + app.notHttp);
        goodClientGetsThrough(web);
        goodClientGetsThrough(auto);
    }

    @Test
    void bytesThatAreNotHttpOnAnHttpPortNeverReachTheApplication() throws Exception {
        int before = app.count();
        byte[] hello = {0x16, 0x03, 0x01, 0x00, 0x2a, 0x01, 0x00, 0x00, 0x26, 0x03, 0x03, 'G', 'E', 'T', ' ', '/'};
        try (RawClient c = new RawClient(web)) {
            c.send(hello).send("admin HTTP/1.1\r\n\r\n");
            String r = c.response();
            System.out.println("TLS-looking bytes on a port declared http: " + r);
            assertTrue(r != null && r.startsWith("HTTP/1.1 400"), String.valueOf(r));
        }
        assertEquals(before, app.count(), "nothing reached the application: " + app.notHttp);
        goodClientGetsThrough(web);
    }

    @Test
    void leadingEmptyLinesAreHttpAsHttp11Allows() throws Exception {
        try (RawClient c = new RawClient(auto)) {
            c.send("\r\n\r\nGET /admin HTTP/1.1\r\nhost: auto\r\n\r\n");
            assertEquals(403, c.status(), "a request after empty lines, on an undeclared port, is HTTP");
        }
        try (RawClient c = new RawClient(auto)) {
            c.send("\r\nGET /crlf-ok HTTP/1.1\r\nhost: auto\r\n\r\n");
            assertEquals(200, c.status());
        }
        assertTrue(app.saw("GET /crlf-ok HTTP/1.1"));
        assertFalse(app.saw("/admin"));
    }

    @Test
    void tcpThroughTheWaypointMeetsThePolicyAsTcp() throws Exception {
        int before = echo.connections.get();
        // Declared tcp, an ALLOW made only of HTTP rules: no TCP stream is allowed.
        assertEquals("", echoThrough(tcpLocked), "ALLOW of HTTP rules only denies TCP");
        // Undeclared, bytes that are not HTTP: TCP; the DENY naming paths denies it as TCP.
        assertEquals("", echoThrough(tcpUndeclared), "a DENY with HTTP fields denies TCP more broadly");
        assertEquals(before, echo.connections.get(), "no denied stream reached the application");
        // Allowed by principal: the bytes flow.
        assertEquals("\u0000hello over tcp", echoThrough(tcpOpen));
        assertEquals(before + 1, echo.connections.get());
    }

    /**
     * HEADERS then RST_STREAM at once, thousands of times on one connection, to a port declared TCP
     * (python-h2). The waypoint answers such a CONNECT only once its tunnel to the endpoint is up, so
     * every reset comes before the answer and spends the rapid-reset budget: GOAWAY(ENHANCE_YOUR_CALM)
     * ends it, and the endpoint and the application see no more CONNECTs and dials than the budget
     * and the bound on streams in setup, not one per reset.
     */
    @Test
    void rapidResetOnATcpPortEndsInGoAwayAndTheApplicationSeesBoundedDials() throws Exception {
        Path script = Path.of(System.getProperty("basedir", ".")).resolve("../shared-proto/src/test/python/hbone_hostile_client.py")
                .normalize();
        assertTrue(Files.isRegularFile(script), "shared-proto's hostile HBONE client: " + script);
        var cert = box.ca.issue(CLIENT, java.time.Duration.ofHours(1));
        Path chain = Files.writeString(dir.resolve("client-chain.pem"), Pem.encodeCertificates(cert.chain()));
        Path key = Files.writeString(dir.resolve("client-key.pem"), Pem.encodePrivateKey(cert.privateKey()));
        Path root = Files.writeString(dir.resolve("root.pem"), Pem.encodeCertificate(box.ca.root()));
        int dialsBefore = echo.connections.get();
        int connectsBefore = box.endpointConnects.size();
        InetSocketAddress target = vip(TCP_OPEN);
        String out = run("/usr/bin/python3", script.toString(), "--mode", "rapid-reset", "--server", "127.0.94.1:" + HBONE,
                "--cert", chain.toString(), "--key", key.toString(), "--ca", root.toString(), "--authority",
                target.getAddress().getHostAddress() + ":" + target.getPort(), "--streams", "5000", "--batch", "50",
                "--wait", "10");
        io.vertx.core.json.JsonObject attack = new io.vertx.core.json.JsonObject(out.substring(out.lastIndexOf('\n') + 1));
        Thread.sleep(1_000); // dials under way when the connection closed finish (each keeps its place in setup)
        int dials = echo.connections.get() - dialsBefore;
        int connects = box.endpointConnects.size() - connectsBefore;
        System.out.printf("rapid reset on a TCP port: %d HEADERS+RST_STREAM sent; waypoint: GOAWAY %s; cost: %d CONNECTs to"
                + " the endpoint, %d dials of the application%n", attack.getInteger("sent_streams"),
                attack.getValue("goaway"), connects, dials);
        io.vertx.core.json.JsonObject goAway = attack.getJsonObject("goaway");
        assertTrue(goAway != null && goAway.getLong("error_code") == 11, "GOAWAY(ENHANCE_YOUR_CALM): " + attack);
        assertTrue(connects <= 300, "CONNECTs to the endpoint bounded by the budget and the setup bound: " + connects);
        assertTrue(dials <= 300, "dials of the application bounded: " + dials);
        assertEquals("\u0000hello over tcp", echoThrough(tcpOpen), "a good client still gets through");
    }

    /** What comes back for a payload that does not look like HTTP; "" when the stream is refused. */
    static String echoThrough(InetSocketAddress tunnel) throws Exception {
        try (RawClient c = new RawClient(tunnel)) {
            c.send("\u0000hello over tcp");
            StringBuilder seen = new StringBuilder();
            Thread.sleep(300);
            long ms = c.millisUntilClosed(1_500, seen);
            System.out.printf("TCP to %s: got '%s', %s%n", tunnel, seen, ms < 0 ? "still open" : "closed after " + ms
                    + " ms");
            return seen.toString();
        }
    }

    // ---------------------------------------------------------------- timeouts and memory

    @Test
    void headersTrickledByteByByteHitTheHeaderTimeout() throws Exception {
        try (RawClient c = new RawClient(web)) {
            c.send("GET /slowloris HTTP/1.1\r\nhost: web\r\nx-slow: ");
            Thread trickle = Thread.ofVirtual().start(() -> {
                try {
                    for (int i = 0; i < 200; i++) {
                        c.send("x");
                        Thread.sleep(50);
                    }
                } catch (Exception stopped) {
                    // the waypoint closed the connection
                }
            });
            StringBuilder seen = new StringBuilder();
            long ms = c.millisUntilClosed(8_000, seen);
            trickle.interrupt();
            System.out.printf("slowloris (a header byte every 50 ms): %s, answer '%s' (header timeout 1 s)%n",
                    ms < 0 ? "still open after 8 s" : "closed after " + ms + " ms", seen.toString().split("\r\n")[0]);
            assertTrue(ms >= 0, "the connection is closed by the header timeout");
            assertTrue(seen.toString().startsWith("HTTP/1.1 408"), seen.toString());
        }
        assertFalse(app.saw("/slowloris"));
        goodClientGetsThrough(web);
    }

    @Test
    void anIdleKeepAliveConnectionIsClosedAfterTheIdleTimeout() throws Exception {
        try (RawClient c = new RawClient(web)) {
            c.send("GET /keep HTTP/1.1\r\nhost: web\r\n\r\n");
            assertEquals(200, c.status());
            StringBuilder seen = new StringBuilder();
            long ms = c.millisUntilClosed(8_000, seen);
            System.out.printf("idle keep-alive connection: %s (idle timeout 3 s)%n",
                    ms < 0 ? "still open after 8 s" : "closed after " + ms + " ms");
            assertTrue(ms >= 2_500, "closed by the idle timeout, not before: " + ms);
            assertEquals("", seen.toString());
        }
        goodClientGetsThrough(web);
    }

    @Test
    void aRequestBodyThatNeverCompletesHitsTheRequestTimeout() throws Exception {
        try (RawClient c = new RawClient(web)) {
            c.send("POST /upload HTTP/1.1\r\nhost: web\r\ncontent-length: 100000\r\n\r\n").send("x".repeat(1000));
            StringBuilder seen = new StringBuilder();
            long ms = c.millisUntilClosed(8_000, seen);
            System.out.printf("body of 100000 bytes announced, 1000 sent: %s, answer '%s' (request timeout 2 s)%n",
                    ms < 0 ? "still open after 8 s" : "closed after " + ms + " ms", seen.toString().split("\r\n")[0]);
            assertTrue(ms >= 0, "closed by the request timeout");
            assertTrue(seen.toString().startsWith("HTTP/1.1 408"), seen.toString());
        }
        assertFalse(app.saw("/upload"));
        goodClientGetsThrough(web);
    }

    @Test
    void http2StreamsAndConnectionsHaveTheirTimeoutsToo() throws Exception {
        String stalled = h2c("stall-body", web, "/h2-upload");
        System.out.println("h2c stream whose body never ends: " + stalled + " (request timeout 2 s)");
        assertTrue(stalled.startsWith("status 408") || stalled.startsWith("reset"), stalled);
        String idle = h2c("idle", web, "/");
        System.out.println("h2c connection without a stream: " + idle + " (idle timeout 3 s)");
        assertTrue(idle.startsWith("goaway") || idle.startsWith("closed"), idle);
        assertTrue(h2c("get", web, "/h2-good").startsWith("status 200"));
    }

    @Test
    void slowUploadersCannotHoldMoreThanTheBodyBudget() throws Exception {
        // Bodies stream to the application as they come. A copy is held only while a retry may need
        // it (this route retries), each up to retry-buffer-bytes (512 KiB here) and all copies
        // together up to max-buffered-body-bytes (1 MiB): slow uploaders cannot make the waypoint
        // hold more. Past the budget a request is not refused: it streams on without a copy (and
        // would not be retried).
        String gauge = "waypoint_buffered_body_bytes";
        long activeBefore = activeBufferBytes();
        List<RawClient> uploaders = new ArrayList<>();
        java.util.concurrent.atomic.AtomicLong peak = new java.util.concurrent.atomic.AtomicLong();
        java.util.concurrent.atomic.AtomicBoolean sampling = new java.util.concurrent.atomic.AtomicBoolean(true);
        Thread sampler = Thread.ofPlatform().daemon().start(() -> {
            while (sampling.get()) {
                peak.accumulateAndGet((long) budgetMetrics.get(gauge).gauge().value(), Math::max);
                try {
                    Thread.sleep(1);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        try {
            for (int i = 0; i < 8; i++) {
                RawClient c = new RawClient(budgetUpload);
                uploaders.add(c);
                c.send("POST /slow-upload-" + i + " HTTP/1.1\r\nhost: upload\r\ncontent-length: 400000\r\n\r\n")
                        .send("u".repeat(300_000));
            }
            Thread.sleep(1_000);
            for (RawClient c : uploaders) {
                assertEquals(null, c.statusWithin(200), "an upload in progress is not refused");
            }
            double held = budgetMetrics.get(gauge).gauge().value();
            System.out.printf("8 slow uploaders (300,000 of 400,000 bytes each, 2.4 MB in all): none refused,"
                    + " %s = %.0f now, %d at most (budget 1,048,576), %.0f tunnels open; Netty's pooled buffers in"
                    + " use in this JVM (the waypoint and the test's own tunnels) %d -> %d bytes%n", gauge, held,
                    peak.get(), budgetMetrics.get("waypoint_open_tunnels").gauge().value(), activeBefore,
                    activeBufferBytes());
            assertTrue(peak.get() <= 1_048_576, "held at most the budget: " + peak.get());
            assertTrue(held > 0, "copies are held for the retries this route may make");
            // Meanwhile others are served: a request without a body, and a small body.
            try (RawClient c = new RawClient(budgetUpload)) {
                c.send("GET /during-attack HTTP/1.1\r\nhost: upload\r\n\r\n");
                assertEquals(200, c.status());
                c.send("POST /small HTTP/1.1\r\nhost: upload\r\ncontent-length: 1000\r\n\r\n" + "s".repeat(1000));
                assertEquals(200, c.status());
            }
            // The uploads end: each reaches the application whole.
            for (RawClient c : uploaders) {
                c.send("u".repeat(100_000));
                assertEquals(200, c.status());
            }
        } finally {
            sampling.set(false);
            sampler.join();
            for (RawClient c : uploaders) {
                c.close();
            }
        }
        for (int i = 0; i < 8; i++) {
            String target = "/slow-upload-" + i;
            assertTrue(app.requests.stream().anyMatch(r -> r.target().equals(target) && r.bodyBytes() == 400_000),
                    target + " reached the application whole");
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (budgetMetrics.get(gauge).gauge().value() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        System.out.printf("uploads done: %s = %.0f, at most %d during the attack%n", gauge,
                budgetMetrics.get(gauge).gauge().value(), peak.get());
        assertEquals(0, budgetMetrics.get(gauge).gauge().value(), "the budget is given back");
        assertTrue(peak.get() <= 1_048_576, "held at most the budget: " + peak.get());
    }

    /** Bytes allocated now from Netty's pooled allocator (the data plane's buffers). */
    static long activeBufferBytes() {
        var m = PooledByteBufAllocator.DEFAULT.metric();
        return java.util.stream.Stream.concat(m.directArenas().stream(), m.heapArenas().stream())
                .mapToLong(io.netty.buffer.PoolArenaMetric::numActiveBytes).sum();
    }

    // ---------------------------------------------------------------- the path policy judges

    @Test
    void policyJudgesExactlyThePathTheApplicationGets() throws Exception {
        // Default: escaped slashes are refused, slashes merged, dot segments removed.
        assertEquals("400", curlStatus(web, "/public%2F..%2Fadmin").trim(), "an escaped slash is refused");
        assertEquals("400", curlStatus(web, "/public%5c..%5cadmin").trim(), "an escaped backslash too");
        assertEquals("403", curlStatus(web, "//admin").trim(), "slashes merged before policy");
        assertEquals("403", curlStatus(web, "/files/a%20b").trim(), "the policy's encoded path is the one judged");
        assertEquals("200", curlStatus(web, "/files/a%20c").trim());
        assertTrue(app.saw("GET /files/a%20c HTTP/1.1"), "the application got the path policy judged");
        assertEquals("200", curlStatus(web, "/caf%C3%A9/./a//menu").trim());
        assertTrue(app.saw("GET /caf%C3%A9/a/menu HTTP/1.1"), "normalized as judged: " + app.requests);
        // HTTP/2 (h2c, python-h2 sends :path exactly): the same rules.
        assertTrue(h2c("get", web, "/public%2F..%2Fadmin").startsWith("status 400"));
        assertTrue(h2c("get", web, "//admin").startsWith("status 403"));
        assertTrue(h2c("get", web, "/files/a%20b").startsWith("status 403"));

        // UNESCAPE_AND_FORWARD: %2F is a slash for policy and for the application alike.
        assertEquals("403", curlStatus(unescapeWeb, "/public%2F..%2Fadmin").trim());
        assertEquals("200", curlStatus(unescapeWeb, "/x%2fy").trim());
        assertTrue(app.saw("GET /x/y HTTP/1.1"), app.requests.toString());
        // KEEP_UNCHANGED: the escape stays, for policy and for the application alike.
        assertEquals("403", curlStatus(keepWeb, "/secret%2Fpath").trim(), "judged with its escape");
        assertEquals("200", curlStatus(keepWeb, "/public%2F..%2Fkept").trim());
        assertTrue(app.saw("GET /public%2F..%2Fkept HTTP/1.1"), app.requests.toString());
        // UNESCAPE_AND_REDIRECT: the client is sent to the unescaped path.
        assertEquals("307 http://127.0.94.1:58223/x/redirected", curlStatus(redirectWeb, "/x%2Fredirected").trim());

        assertFalse(app.saw("admin"), "no variant of /admin reached the application: " + app.requests);
        goodClientGetsThrough(web);
    }

    // ---------------------------------------------------------------- headers, labels, addresses

    @Test
    void identityHeadersAClientSendsAreReplacedOrRemoved() throws Exception {
        String out = run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                "-H", "x-forwarded-client-cert: By=spiffe://cluster.local/ns/demo/sa/app;URI=spiffe://cluster.local/ns/demo/sa/admin",
                "-H", "x-envoy-internal: true", "-H", "x-envoy-peer-metadata-id: sidecar~1.2.3.4~admin",
                "-H", "x-forwarded-for: 6.6.6.6",
                "http://127.0.94.1:" + web.getPort() + "/who-am-i");
        assertEquals("200", out);
        RecordingBackend.Received got = app.requests.stream().filter(r -> r.target().equals("/who-am-i")).findFirst()
                .orElseThrow();
        String xfcc = got.headers().get("x-forwarded-client-cert");
        System.out.println("the application got x-forwarded-client-cert: " + xfcc);
        assertTrue(xfcc != null && xfcc.startsWith("By=" + WAYPOINT.uri() + ";Hash=")
                && xfcc.endsWith(";URI=" + CLIENT.uri()), "the waypoint's own, from the verified peer: " + xfcc);
        assertFalse(xfcc.contains("sa/admin"), xfcc);
        assertTrue(got.headers().keySet().stream().noneMatch(h -> h.startsWith("x-envoy-")), got.headers().toString());
        assertEquals("6.6.6.6, 127.0.0.1", got.headers().get("x-forwarded-for"),
                "the waypoint's hop is appended: the last address is the one it vouches for");
    }

    @Test
    void baggageCannotMintMetricLabels() throws Exception {
        for (int i = 0; i < 40; i++) {
            try (RawClient c = new RawClient(webWithBaggage)) {
                c.send("GET /baggage HTTP/1.1\r\nhost: web\r\nconnection: close\r\n\r\n");
                assertEquals(200, c.status());
            }
        }
        Set<String> names = labelValues(mainMetrics.scrape(), "source_workload");
        System.out.println("40 connections, each with its own baggage service.name: source_workload values " + names);
        assertTrue(names.size() <= 5, "bounded: " + names);
        assertTrue(names.contains("unknown"), "the excess is 'unknown': " + names);
        // The application's status code is a label too: one that is no HTTP status is a protocol error.
        try (RawClient c = new RawClient(web)) {
            c.send("GET /status/12345 HTTP/1.1\r\nhost: web\r\n\r\n");
            assertEquals(503, c.status(), "status 12345 from the application");
            c.send("GET /status/599 HTTP/1.1\r\nhost: web\r\n\r\n");
            assertEquals(599, c.status());
        }
        Set<String> codes = labelValues(mainMetrics.scrape(), "response_code");
        assertFalse(codes.contains("12345"), codes.toString());
    }

    /** The values of one label over the istio_requests_total series to the web service. */
    static Set<String> labelValues(String scrape, String label) {
        Set<String> out = new TreeSet<>();
        Matcher m = Pattern.compile(label + "=\"([^\"]*)\"").matcher("");
        scrape.lines().filter(l -> l.startsWith("istio_requests_total{")
                && l.contains("destination_service=\"" + WEB.getHostname() + "\"")).forEach(l -> {
                    m.reset(l);
                    if (m.find()) {
                        out.add(m.group(1));
                    }
                });
        return out;
    }

    @Test
    void aForgedForwardedHeaderIsNotBelievedAtTheWaypoint() throws Exception {
        // ALLOW only 10.9.0.0/16: the client claims 10.9.9.9 but connects from 127.0.0.1.
        try (RawClient c = new RawClient(fwd)) {
            c.send("GET /forged HTTP/1.1\r\nhost: fwd\r\n\r\n");
            assertEquals(403, c.status(), "policy judges the address the connection came from");
        }
        assertFalse(app.saw("/forged"));
        // Telemetry is not fooled either: claiming the payments pod's address does not make it payments.
        try (RawClient c = new RawClient(webAsPayments)) {
            c.send("GET /as-payments HTTP/1.1\r\nhost: web\r\n\r\n");
            assertEquals(200, c.status());
        }
        Set<String> sources = labelValues(mainMetrics.scrape(), "source_workload");
        System.out.println("source_workload values after a client claimed " + PAYMENTS_IP + ": " + sources);
        assertFalse(sources.contains("payments"), sources.toString());
        goodClientGetsThrough(web);
    }
}
