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
import java.util.logging.LogRecord;
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
    static final Handler capture = new Handler() {
        @Override
        public void publish(LogRecord r) {
            accessLog.add(r.getParameters() == null ? r.getMessage()
                    : String.format(r.getMessage(), r.getParameters()));
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };
    static final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();
    static int nextTunnelPort = 58401;
    static final String MESH_POD = "10.250.81.2";
    static final String DENIED = "10.250.82.2";

    @BeforeAll
    static void start() throws Exception {
        java.util.logging.Logger.getLogger("dev.ambient.waypoint.access").addHandler(capture);
        outside = new OutsideWorld(dir);
        Path[] api = outside.certificate("api", "api.example.com", "secure.example.com");
        outside.httpServer(80, null);
        outside.httpServer(443, api);
        outside.httpServer(8443, outside.untrustedCertificate("untrusted", "untrusted.example.com"));
        outside.echoServer(9000);
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
                "--address=/denied.example.com/" + DENIED);
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
                external("denied.example.com", "240.240.0.13", 80, 8080, "http", null));
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
