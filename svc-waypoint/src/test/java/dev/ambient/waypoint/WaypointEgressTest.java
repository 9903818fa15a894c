package dev.ambient.waypoint;

import static dev.ambient.waypoint.MeshFixtures.client;
import static dev.ambient.waypoint.MeshFixtures.denyPathPrefix;
import static dev.ambient.waypoint.MeshFixtures.ip;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.workload.NetworkAddress;
import dev.ambient.proto.workload.OriginatedTls;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.TunnelProtocol;
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
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Egress through a waypoint, with the outside world in its own network namespace
 * ({@link OutsideWorld}): services as svc-xds makes them of ServiceEntries (MESH_EXTERNAL, endpoints
 * that are no HBONE peers, known by name or by address), reached by a client through a real HBONE
 * tunnel to the waypoint. The waypoint resolves names through the outside resolver (dnsmasq),
 * applies L7 policy, dials the external host directly, originates TLS when asked (verifying the
 * certificate and its name against a test CA; a wrong name or an unknown CA is 503), and reports
 * the ServiceEntry host as destination service.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class WaypointEgressTest {

    static final String NS = "egress";
    static final int HBONE = 58008;
    static final SpiffeId SOURCE = new SpiffeId("cluster.local", "demo", "sleep");
    static final SpiffeId WAYPOINT = new SpiffeId("cluster.local", NS, "waypoint");

    @TempDir
    static Path dir;
    static OutsideWorld outside;
    static HboneTestBox box;
    static PrometheusMeterRegistry registry;
    static final List<String> accessLog = Collections.synchronizedList(new ArrayList<>());
    static final Handler capture = new LogCapture(accessLog);
    static final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();
    static int nextTunnelPort = 58401;
    static final String MESH_POD = "10.250.81.2";
    static final String DENIED = "10.250.82.2";
    static Path fifo;
    static Path[] client;
    static final String ORIGIN_ID = "spiffe://partner.example/ns/api/sa/origin";

    /** MUTUAL as svc-xds publishes it: the test CA, the waypoint's client certificate, the origin's name as SNI. */
    static OriginatedTls.Builder mutual() {
        return OriginatedTls.newBuilder().setCaCertificates(outside.caCert.toString()).setSni("origin.example.com")
                .setClientCertificate(client[0].toString()).setPrivateKey(client[1].toString())
                .setSource(NS + "/origin-mtls");
    }

    @BeforeAll
    static void start() throws Exception {
        java.util.logging.Logger.getLogger("dev.ambient.waypoint.access").addHandler(capture);
        outside = new OutsideWorld(dir);
        Path[] api = outside.certificate("api", "api.example.com", "secure.example.com");
        outside.httpServer(80, null);
        outside.httpServer(443, api);
        outside.httpServer(8443, outside.untrustedCertificate("untrusted", "untrusted.example.com"));
        outside.echoServer(9000);
        Path[] origin = outside.certificate("origin", "origin.example.com", ORIGIN_ID);
        client = outside.certificate("waypoint-client", "waypoint-client.egress.example");
        outside.tlsOriginServer(8444, origin, outside.caCert, "h2,http/1.1");
        outside.tlsOriginServer(8445, origin, outside.caCert, "http/1.1");
        // What an attacker's DNS may point a name at: a mesh pod on another node, the node the
        // waypoint runs on, a network the operator denied.
        outside.addAddress(MESH_POD);
        outside.httpServer(true, MESH_POD, 8080, null);
        outside.httpServer(false, OutsideWorld.HOST, 58181, null);
        outside.addAddress(DENIED);
        outside.httpServer(true, DENIED, 8080, null);
        outside.resolver("--address=/api.example.com/" + OutsideWorld.ADDRESS,
                "--address=/secure.example.com/" + OutsideWorld.ADDRESS,
                "--address=/wrong.example.com/" + OutsideWorld.ADDRESS,
                "--address=/untrusted.example.com/" + OutsideWorld.ADDRESS,
                "--address=/insecure.example.com/" + OutsideWorld.ADDRESS,
                "--address=/echo.example.com/" + OutsideWorld.ADDRESS,
                "--address=/rebind.example.com/127.0.0.1",
                "--address=/metadata.example.com/169.254.169.254",
                "--address=/pod.example.com/" + MESH_POD,
                "--address=/node.example.com/" + OutsideWorld.HOST,
                "--address=/denied.example.com/" + DENIED,
                "--address=/fifo.example.com/" + OutsideWorld.ADDRESS,
                "--address=/broken.example.com/" + OutsideWorld.ADDRESS,
                "--address=/origin.example.com/" + OutsideWorld.ADDRESS,
                "--address=/origin1.example.com/" + OutsideWorld.ADDRESS,
                "--address=/nocert.example.com/" + OutsideWorld.ADDRESS,
                "--address=/san.example.com/" + OutsideWorld.ADDRESS,
                "--address=/wrongsan.example.com/" + OutsideWorld.ADDRESS);
        fifo = dir.resolve("ca-fifo.pem");
        OutsideWorld.sh("mkfifo " + fifo);
        box = new HboneTestBox(dir);
        registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        WaypointNode waypoint = box.waypoint("127.0.87.1", HBONE, 58108, Map.of(
                "waypoint.gateway", NS + "/waypoint",
                "waypoint.upstream.dns-servers", OutsideWorld.ADDRESS,
                "waypoint.upstream.dns-timeout", "2s",
                "waypoint.upstream.connect-timeout", "2s",
                "waypoint.upstream.denied-cidrs", "10.250.82.0/24"), registry);

        OriginatedTls verified = OriginatedTls.newBuilder().setCaCertificates(outside.caCert.toString())
                .setSource(NS + "/api-tls").build();
        List<Service> services = List.of(
                external("api.example.com", "240.240.0.1", 80, 80, "http", null),
                external("secure.example.com", "240.240.0.2", 80, 443, "http", verified),
                // The server at wrong.example.com presents api.example.com's certificate.
                external("wrong.example.com", "240.240.0.3", 80, 443, "http", verified),
                external("untrusted.example.com", "240.240.0.4", 80, 8443, "http", verified),
                external("insecure.example.com", "240.240.0.5", 80, 8443, "http", OriginatedTls.newBuilder()
                        .setInsecureSkipVerify(true).setSni("untrusted.example.com").build()),
                external("rebind.example.com", "240.240.0.6", 80, 80, "http", null),
                external("metadata.example.com", "240.240.0.7", 80, 80, "http", null),
                external("echo.example.com", "240.240.0.8", 9000, 9000, "tcp", null),
                external("static.example.com", "240.240.0.9", 80, 80, "http", null),
                external("nxdomain.example.com", "240.240.0.10", 80, 80, "http", null),
                external("pod.example.com", "240.240.0.11", 80, 8080, "http", null),
                external("node.example.com", "240.240.0.12", 80, 58181, "http", null),
                external("denied.example.com", "240.240.0.13", 80, 8080, "http", null),
                // A rule whose CA "file" is a FIFO: opening it blocks until someone writes.
                external("fifo.example.com", "240.240.0.14", 80, 443, "http", OriginatedTls.newBuilder()
                        .setCaCertificates(fifo.toString()).setSni("secure.example.com").setSource(NS + "/fifo").build()),
                // As svc-xds publishes an invalid DestinationRule that asked for TLS.
                external("broken.example.com", "240.240.0.15", 80, 80, "http", OriginatedTls.newBuilder()
                        .setSource(NS + "/broken").setRefusal("DestinationRule egress/broken asks for TLS but is"
                                + " invalid: spec.trafficPolicy.tls.mode: must be one of [DISABLE, ISTIO_MUTUAL,"
                                + " MUTUAL, SIMPLE], got 'SIMPEL'").build()),
                external("origin.example.com", "240.240.0.16", 80, 8444, "http", mutual().build()),
                external("origin1.example.com", "240.240.0.17", 80, 8445, "http", mutual().build()),
                external("nocert.example.com", "240.240.0.18", 80, 8445, "http", verified.toBuilder()
                        .setSni("origin.example.com").build()),
                // The SNI is a name the certificate does not carry: the rule's SANs are verified instead.
                external("san.example.com", "240.240.0.19", 80, 8445, "http", mutual().setSni("unrelated.example.net")
                        .addSubjectAltNames(ORIGIN_ID).build()),
                external("wrongsan.example.com", "240.240.0.20", 80, 8445, "http", mutual()
                        .addSubjectAltNames("spiffe://partner.example/ns/api/sa/someone-else").build()));
        List<Workload> workloads = new ArrayList<>();
        workloads.add(client("sleep", "demo", "sleep", "127.0.0.1"));
        workloads.add(client("payments", "bank", "payments", MESH_POD)); // in the mesh (HBONE), on another node
        for (Service s : services) {
            Workload.Builder w = Workload.newBuilder().setUid("Kubernetes/networking.istio.io/ServiceEntry/" + NS + "/"
                    + s.getHostname()).setName(s.getHostname()).setNamespace(NS)
                    .setTunnelProtocol(TunnelProtocol.NONE)
                    // As svc-xds maps a ServiceEntry endpoint without ports of its own: 0, the service's target.
                    .putServices(WaypointState.key(s), PortList.newBuilder().addPorts(Port.newBuilder()
                            .setServicePort(s.getPorts(0).getServicePort()).setTargetPort(0)).build());
            if (s.getHostname().equals("static.example.com")) {
                w.addAddresses(ip(OutsideWorld.ADDRESS)); // resolution STATIC
            } else {
                w.setHostname(s.getHostname()); // resolution DNS
            }
            workloads.add(w.build());
        }
        waypoint.store().replace(WaypointState.of(workloads, services, List.of(), List.of(
                denyPathPrefix("deny-admin", NS, "Service/" + NS + "/api.example.com", "/admin"))));
    }

    static Service external(String host, String vip, int port, int targetPort, String protocol, OriginatedTls tls) {
        Service.Builder s = Service.newBuilder().setName(host).setNamespace(NS).setHostname(host)
                .addAddresses(NetworkAddress.newBuilder().setAddress(ip(vip)))
                .addPorts(Port.newBuilder().setServicePort(port).setTargetPort(targetPort).setAppProtocol(protocol))
                .setMeshExternal(true);
        if (tls != null) {
            s.addOriginatedTls(tls.toBuilder().setPort(port));
        }
        return s.build();
    }

    /** A local port tunnelled through HBONE to the waypoint for {@code vip:port}, as the client's ztunnel does. */
    static InetSocketAddress tunnel(String vip, int port) {
        return box.clientTunnel(new InetSocketAddress("127.0.87.2", nextTunnelPort++), SOURCE,
                new InetSocketAddress("127.0.87.1", HBONE), WAYPOINT, new InetSocketAddress(vip, port));
    }

    static HttpResponse<String> get(InetSocketAddress tunnel, String host, String path) throws Exception {
        // The application's own Host header, as it would address the external service.
        return http.send(HttpRequest.newBuilder(URI.create("http://" + tunnel.getHostString() + ":" + tunnel.getPort()
                + path)).timeout(Duration.ofSeconds(15)).build(), HttpResponse.BodyHandlers.ofString());
    }

    @AfterAll
    static void stop() throws Exception {
        java.util.logging.Logger.getLogger("dev.ambient.waypoint.access").removeHandler(capture);
        if (box != null) {
            box.close();
        }
        if (outside != null) {
            outside.close();
        }
    }

    @Test
    void aNameResolvedByTheWaypointIsReachedInPlainHttpAndPolicyDecides() throws Exception {
        InetSocketAddress api = tunnel("240.240.0.1", 80);
        HttpResponse<String> ok = get(api, "api.example.com", "/get");
        assertEquals(200, ok.statusCode(), ok.body());
        assertTrue(ok.body().startsWith("outside http "), ok.body());
        assertTrue(ok.body().contains(" /get"), ok.body());

        HttpResponse<String> denied = get(api, "api.example.com", "/admin/users");
        assertEquals(403, denied.statusCode());
        assertEquals("RBAC: access denied", denied.body());
        assertTrue(outside.log("http-80").lines().noneMatch(l -> l.contains("/admin")),
                "the denied request never left: " + outside.log("http-80"));
        assertEquals(200, get(api, "api.example.com", "/after-deny").statusCode(), "a good request still goes out");

        String text = registry.scrape();
        String line = text.lines().filter(l -> l.startsWith("istio_requests_total{")
                && l.contains("response_code=\"200\"") && l.contains("destination_service=\"api.example.com\""))
                .findFirst().orElse("");
        assertTrue(line.contains("destination_service_namespace=\"egress\""), text);
        assertTrue(line.contains("source_principal=\"spiffe://cluster.local/ns/demo/sa/sleep\""), line);
        assertTrue(line.contains("destination_principal=\"unknown\""), "an external host has no mesh identity: " + line);
        assertTrue(text.lines().anyMatch(l -> l.startsWith("istio_requests_total{") && l.contains("response_code=\"403\"")
                && l.contains("destination_service=\"api.example.com\"")), text);
    }

    @Test
    void aStaticAddressIsReachedDirectly() throws Exception {
        HttpResponse<String> r = get(tunnel("240.240.0.9", 80), "static.example.com", "/static");
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.body().contains(" /static"), r.body());
    }

    @Test
    void tlsIsOriginatedAndTheCertificateVerified() throws Exception {
        HttpResponse<String> r = get(tunnel("240.240.0.2", 80), "secure.example.com", "/secure");
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.body().startsWith("outside https "), "the app spoke HTTP, the wire was TLS: " + r.body());
    }

    @Test
    void aCertificateForAnotherNameIsRefusedWith503AndTheReasonLogged() throws Exception {
        HttpResponse<String> r = get(tunnel("240.240.0.3", 80), "wrong.example.com", "/wrong");
        assertEquals(503, r.statusCode(), r.body());
        assertTrue(outside.log("http-443").lines().noneMatch(l -> l.contains("/wrong")), "nothing sent");
        assertLogged("wrong.example.com", "TLS origination to wrong.example.com");
        assertEquals(200, get(tunnel("240.240.0.2", 80), "secure.example.com", "/still").statusCode());
    }

    @Test
    void aCertificateFromAnUntrustedCaIsRefusedUnlessTheRuleSaysInsecureSkipVerify() throws Exception {
        HttpResponse<String> r = get(tunnel("240.240.0.4", 80), "untrusted.example.com", "/untrusted");
        assertEquals(503, r.statusCode(), r.body());
        assertTrue(outside.log("http-8443").lines().noneMatch(l -> l.contains("/untrusted")), "nothing sent");
        assertLogged("untrusted.example.com", "TLS origination to untrusted.example.com");

        HttpResponse<String> insecure = get(tunnel("240.240.0.5", 80), "insecure.example.com", "/insecure");
        assertEquals(200, insecure.statusCode(), insecure.body());
        assertTrue(insecure.body().startsWith("outside https "), insecure.body());
    }

    @Test
    void aNameResolvingToLoopbackOrLinkLocalIsRefused() throws Exception {
        assertEquals(503, get(tunnel("240.240.0.6", 80), "rebind.example.com", "/rebind").statusCode());
        assertLogged("rebind.example.com", "127.0.0.1 is loopback");
        assertEquals(503, get(tunnel("240.240.0.7", 80), "metadata.example.com", "/latest/meta-data").statusCode());
        assertLogged("metadata.example.com", "169.254.169.254 is loopback, wildcard, link-local");
    }

    /**
     * The attack: whoever controls an external name's DNS points it at a pod of the mesh, at the
     * node the waypoint runs on, or at a network the operator denied; the waypoint would dial it
     * directly, with its own standing, around the pod's policy. Each is refused with the reason
     * logged, and nothing reaches the server behind it.
     */
    @Test
    void aNameResolvingToTheMeshItselfOrADeniedNetworkIsRefused() throws Exception {
        assertEquals(503, get(tunnel("240.240.0.11", 80), "pod.example.com", "/steal").statusCode());
        assertLogged("pod.example.com", "refused: " + MESH_POD + " is an address of the mesh (workload bank/payments)");
        assertEquals(503, get(tunnel("240.240.0.12", 80), "node.example.com", "/steal").statusCode());
        assertLogged("node.example.com", "refused: " + OutsideWorld.HOST + " is an address of this host");
        assertEquals(503, get(tunnel("240.240.0.13", 80), "denied.example.com", "/steal").statusCode());
        assertLogged("denied.example.com", "refused: " + DENIED + " is in a denied network (10.250.82.0/24,"
                + " waypoint.upstream.denied-cidrs)");
        for (String server : List.of("http-" + MESH_POD + "-8080", "http-" + OutsideWorld.HOST + "-58181",
                "http-" + DENIED + "-8080")) {
            assertTrue(outside.log(server).lines().noneMatch(l -> l.contains("/steal")), server + " was reached: "
                    + outside.log(server));
        }
        assertEquals(200, get(tunnel("240.240.0.1", 80), "api.example.com", "/after-refusals").statusCode(),
                "the outside world is still reached");
    }

    /**
     * Reading a rule's CA file happens off the event loops: while a dial waits for a CA "file" that
     * never comes (a FIFO), no data-plane thread is ever seen in file I/O and requests to other
     * hosts on both loops are answered; the waiting one is refused with the reason.
     */
    @Test
    void aRulesFilesAreNeverReadOnTheEventLoop() throws Exception {
        var waiting = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
            try {
                return get(tunnel("240.240.0.14", 80), "fifo.example.com", "/fifo").statusCode();
            } catch (Exception e) {
                return -1;
            }
        });
        try {
            long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(1500);
            while (System.nanoTime() < until) {
                for (var e : Thread.getAllStackTraces().entrySet()) {
                    if (e.getKey().getName().startsWith("waypoint-dataplane")) {
                        for (StackTraceElement f : e.getValue()) {
                            String c = f.getClassName();
                            assertTrue(!(c.startsWith("java.io.File") || c.startsWith("sun.nio.fs.")
                                    || c.startsWith("sun.nio.ch.FileChannel") || c.equals("java.nio.file.Files")),
                                    e.getKey().getName() + " is in file I/O: " + java.util.Arrays.toString(e.getValue()));
                        }
                    }
                }
                Thread.sleep(5);
            }
            for (int i = 0; i < 6; i++) { // new tunnels, new HBONE connections: both loops
                var r = http.send(HttpRequest.newBuilder(URI.create("http://" + tunnelHost(tunnel("240.240.0.2", 80))
                        + "/meanwhile")).timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString());
                assertEquals(200, r.statusCode(), r.body());
            }
            assertEquals(503, (int) waiting.get(20, TimeUnit.SECONDS));
            assertLogged("fifo.example.com", "not a regular file");
        } finally {
            // Whatever still waits on the FIFO (the old code's loop) is let go.
            new ProcessBuilder("sh", "-c", "timeout 2 sh -c 'echo > " + fifo + "'").start();
        }
    }

    static String tunnelHost(InetSocketAddress tunnel) {
        return tunnel.getHostString() + ":" + tunnel.getPort();
    }

    /** An invalid DestinationRule that asked for TLS (as svc-xds now publishes it) is refused, never sent in clear. */
    @Test
    void aHostWhoseTlsRuleIsInvalidIsRefusedNotSentInClear() throws Exception {
        HttpResponse<String> r = get(tunnel("240.240.0.15", 80), "broken.example.com", "/broken");
        assertEquals(503, r.statusCode(), r.body());
        assertLogged("broken.example.com", "refused: DestinationRule egress/broken asks for TLS but is invalid:"
                + " spec.trafficPolicy.tls.mode");
        assertTrue(outside.log("http-80").lines().noneMatch(l -> l.contains("/broken")), "nothing sent in clear");
        assertEquals(200, get(tunnel("240.240.0.1", 80), "api.example.com", "/after-broken").statusCode());
    }

    /** MUTUAL against a server that requires a client certificate: presented; without one, refused. */
    @Test
    void mutualTlsPresentsTheClientCertificate() throws Exception {
        HttpResponse<String> r = get(tunnel("240.240.0.17", 80), "origin1.example.com", "/mtls");
        assertEquals(200, r.statusCode(), r.body());
        assertEquals("origin http/1.1 HTTP/1.1 client=waypoint-client.egress.example /mtls\n", r.body());

        // In TLS 1.3 the server judges the client's certificate after the client finished: its alert
        // comes as the answer to the request, which the server never read.
        assertEquals(503, get(tunnel("240.240.0.18", 80), "nocert.example.com", "/nocert").statusCode());
        assertLogged("nocert.example.com", "certificate_required");
        assertTrue(outside.log("origin-8445").lines().noneMatch(l -> l.contains("/nocert")), outside.log("origin-8445"));
        assertEquals(200, get(tunnel("240.240.0.17", 80), "origin1.example.com", "/mtls-again").statusCode());
    }

    /** subjectAltNames replace the host name check: a listed name passes whatever the SNI, another is refused. */
    @Test
    void subjectAltNamesAreVerifiedInsteadOfTheHostName() throws Exception {
        HttpResponse<String> r = get(tunnel("240.240.0.19", 80), "san.example.com", "/san");
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.body().endsWith(" /san\n"), r.body());

        assertEquals(503, get(tunnel("240.240.0.20", 80), "wrongsan.example.com", "/wrongsan").statusCode());
        assertLogged("wrongsan.example.com", "none of the rule's subjectAltNames [spiffe://partner.example/ns/api/sa"
                + "/someone-else]");
        assertTrue(outside.log("origin-8445").lines().noneMatch(l -> l.contains("/wrongsan")), "nothing sent");
    }

    /**
     * ALPN: the waypoint offers h2 and http/1.1 and speaks what the server chose (the app speaks
     * HTTP/1.1 either way); h2's one connection carries requests made at once.
     */
    @Test
    void h2IsNegotiatedAndSpokenUpstream() throws Exception {
        HttpResponse<String> r = get(tunnel("240.240.0.16", 80), "origin.example.com", "/h2");
        assertEquals(200, r.statusCode(), r.body());
        assertEquals("origin h2 HTTP/2 client=waypoint-client.egress.example /h2\n", r.body());
        InetSocketAddress t = tunnel("240.240.0.16", 80);
        List<java.util.concurrent.CompletableFuture<HttpResponse<String>>> many = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            many.add(http.sendAsync(HttpRequest.newBuilder(URI.create("http://" + tunnelHost(t) + "/many-" + i))
                    .timeout(Duration.ofSeconds(15)).build(), HttpResponse.BodyHandlers.ofString()));
        }
        for (int i = 0; i < 8; i++) {
            HttpResponse<String> each = many.get(i).get(20, TimeUnit.SECONDS);
            assertEquals("origin h2 HTTP/2 client=waypoint-client.egress.example /many-" + i + "\n", each.body());
        }
        // A server that offers http/1.1 only gets HTTP/1.1 (origin1's test above).
        assertTrue(get(tunnel("240.240.0.17", 80), "origin1.example.com", "/h1").body().startsWith("origin http/1.1 HTTP/1.1"));
    }

    @Test
    void aNameThatDoesNotResolveIs503() throws Exception {
        assertEquals(503, get(tunnel("240.240.0.10", 80), "nxdomain.example.com", "/x").statusCode());
        assertLogged("nxdomain.example.com", "cannot resolve nxdomain.example.com");
    }

    @Test
    void tcpIsSplicedToTheExternalHost() throws Exception {
        InetSocketAddress echo = tunnel("240.240.0.8", 9000);
        byte[] payload = new byte[2_000_000]; // more than a socket buffer: the FIN must wait for it
        new java.util.Random(7).nextBytes(payload);
        try (Socket s = new Socket(echo.getAddress(), echo.getPort())) {
            s.setSoTimeout(15_000);
            OutputStream out = s.getOutputStream();
            InputStream in = s.getInputStream();
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    out.write(payload);
                    out.flush();
                    s.shutdownOutput();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            byte[] back = in.readAllBytes();
            writer.join();
            assertEquals(payload.length, back.length);
            assertTrue(java.util.Arrays.equals(payload, back));
        }
    }

    static void assertLogged(String host, String reason) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (System.nanoTime() < deadline) {
            synchronized (accessLog) {
                if (accessLog.stream().anyMatch(l -> l.contains(host) && l.contains(reason))) {
                    return;
                }
            }
            Thread.sleep(20);
        }
        throw new AssertionError("no access-log line with " + host + " and '" + reason + "' in " + accessLog);
    }
}
