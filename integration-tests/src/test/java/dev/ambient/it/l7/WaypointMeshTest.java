package dev.ambient.it.l7;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.sun.net.httpserver.HttpServer;
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
import dev.ambient.proto.workload.NetworkAddress;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.StringMatch;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.waypoint.WaypointNode;
import dev.ambient.waypoint.config.WaypointConfig;
import dev.ambient.waypoint.state.WaypointState;
import dev.ambient.ztunnel.ZtunnelNode;
import dev.ambient.ztunnel.config.ZtunnelConfig;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.smallrye.config.PropertiesConfigSource;
import io.smallrye.config.SmallRyeConfigBuilder;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole L7 path on loopback, every hop real: client -> ztunnel (node-a, SOCKS5, the client's
 * certificate) -> waypoint (HBONE, :authority = the service VIP) -> ztunnel (node-b, HBONE with the
 * waypoint's certificate) -> two backend versions (real HTTP servers). The ztunnels read their
 * standalone YAML; the waypoint's store holds the same mesh as svc-xds would stream it, with
 * an HTTPRoute 90/10 split, an L7 deny by path, retries and a timeout.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class WaypointMeshTest {

    static final int ZTUNNEL_HBONE = 58508;
    static final int WAYPOINT_HBONE = 58008;
    static final int POD_PORT = 58480;
    static final InetSocketAddress SOCKS_A = new InetSocketAddress("127.0.85.100", 58580);
    static final String NS = "demo";

    static final String MESH = """
            workloads:
            - {name: sleep, namespace: demo, serviceAccount: sleep, workloadIps: [127.0.85.1], node: node-a, protocol: HBONE}
            - {name: waypoint, namespace: demo, serviceAccount: waypoint, workloadIps: [127.0.87.1], node: waypoint-node, protocol: HBONE}
            - name: reviews-v1
              namespace: demo
              serviceAccount: reviews
              workloadIps: [127.0.86.1]
              node: node-b
              protocol: HBONE
              services: {demo/reviews.demo.svc.cluster.local: {9080: 58480}, demo/reviews-v1.demo.svc.cluster.local: {9080: 58480}}
            - name: reviews-v2
              namespace: demo
              serviceAccount: reviews
              workloadIps: [127.0.86.2]
              node: node-b
              protocol: HBONE
              services: {demo/reviews.demo.svc.cluster.local: {9080: 58480}, demo/reviews-v2.demo.svc.cluster.local: {9080: 58480}}
            - {name: ratings-a, namespace: demo, serviceAccount: ratings, workloadIps: [127.0.86.3], node: node-b, protocol: HBONE, services: {demo/ratings.demo.svc.cluster.local: {9080: 58480}}}
            - {name: ratings-b, namespace: demo, serviceAccount: ratings, workloadIps: [127.0.86.4], node: node-b, protocol: HBONE, services: {demo/ratings.demo.svc.cluster.local: {9080: 58480}}}
            - {name: details, namespace: demo, serviceAccount: details, workloadIps: [127.0.86.5], node: node-b, protocol: HBONE, services: {demo/details.demo.svc.cluster.local: {9080: 58480}}}
            services:
            - {name: reviews, namespace: demo, vips: [127.0.88.10], ports: {9080: 58480}, waypoint: {address: 127.0.87.1, port: 58008}}
            - {name: reviews-v1, namespace: demo, vips: [127.0.88.11], ports: {9080: 58480}}
            - {name: reviews-v2, namespace: demo, vips: [127.0.88.12], ports: {9080: 58480}}
            - {name: ratings, namespace: demo, vips: [127.0.88.20], ports: {9080: 58480}, waypoint: {address: 127.0.87.1, port: 58008}}
            - {name: details, namespace: demo, vips: [127.0.88.30], ports: {9080: 58480}, waypoint: {address: 127.0.87.1, port: 58008}}
            """;

    @TempDir
    static Path dir;
    static final List<AutoCloseable> closeables = new ArrayList<>();
    static final Map<String, AtomicInteger> served = new HashMap<>();
    static WaypointNode waypoint;
    static ZtunnelNode nodeB;

    @BeforeAll
    static void start() throws Exception {
        Path mesh = dir.resolve("mesh.yaml");
        Files.writeString(mesh, MESH);
        Path ca = dir.resolve("ca");
        backend("127.0.86.1", path -> new int[] {200, 0}, "reviews v1");
        backend("127.0.86.2", path -> new int[] {200, 0}, "reviews v2");
        backend("127.0.86.3", path -> new int[] {503, 0}, "ratings a is broken");
        backend("127.0.86.4", path -> new int[] {200, 0}, "ratings b");
        backend("127.0.86.5", path -> new int[] {200, 2_000}, "details, late");

        ztunnel("node-a", "127.0.85.100", SOCKS_A.getPort(), mesh, ca);
        nodeB = ztunnel("node-b", "127.0.86.100", 58581, mesh, ca);

        Map<String, String> p = new HashMap<>();
        p.put("waypoint.gateway", "demo/waypoint");
        p.put("waypoint.identity.ca-dir", ca.toString());
        p.put("waypoint.listen.address", "127.0.87.1");
        p.put("waypoint.listen.hbone-port", Integer.toString(WAYPOINT_HBONE));
        p.put("waypoint.listen.threads", "2");
        p.put("waypoint.upstream.hbone-port", Integer.toString(ZTUNNEL_HBONE));
        WaypointConfig config = new SmallRyeConfigBuilder().withMapping(WaypointConfig.class)
                .withConverter(Duration.class, 100, new io.quarkus.runtime.configuration.DurationConverter())
                .withSources(new PropertiesConfigSource(p, "test", 500)).build().getConfigMapping(WaypointConfig.class);
        waypoint = new WaypointNode(config, new SimpleMeterRegistry()).start();
        closeables.add(waypoint);
        waypoint.store().replace(waypointState());
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (waypoint.notReady().isPresent() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(java.util.Optional.empty(), waypoint.notReady());
    }

    /** What svc-xds streams to this waypoint for the mesh above, with its HTTPRoutes and L7 policy. */
    static WaypointState waypointState() {
        Service reviews = service("reviews", "127.0.88.10");
        Service v1 = service("reviews-v1", "127.0.88.11");
        Service v2 = service("reviews-v2", "127.0.88.12");
        Service ratings = service("ratings", "127.0.88.20");
        Service details = service("details", "127.0.88.30");
        List<Workload> workloads = List.of(
                pod("sleep", "sleep", "127.0.85.1", "node-a"),
                pod("reviews-v1", "reviews", "127.0.86.1", "node-b", reviews, v1),
                pod("reviews-v2", "reviews", "127.0.86.2", "node-b", reviews, v2),
                pod("ratings-a", "ratings", "127.0.86.3", "node-b", ratings),
                pod("ratings-b", "ratings", "127.0.86.4", "node-b", ratings),
                pod("details", "details", "127.0.86.5", "node-b", details));
        ServiceRoutes reviewsRoutes = ServiceRoutes.newBuilder().setServiceNamespace(NS)
                .setServiceHostname(reviews.getHostname())
                .addRoutes(Route.newBuilder().setName("demo/reviews/0")
                        .addMatches(RouteMatch.newBuilder().setPath(PathMatch.newBuilder().setValue("/")))
                        .addBackends(backend(v1, 90)).addBackends(backend(v2, 10)))
                .build();
        ServiceRoutes ratingsRoutes = ServiceRoutes.newBuilder().setServiceNamespace(NS)
                .setServiceHostname(ratings.getHostname())
                .addRoutes(Route.newBuilder().setName("demo/ratings/0")
                        .setRetry(RetryPolicy.newBuilder().setAttempts(2).addRetryOn("503"))
                        .addBackends(backend(ratings, 1)))
                .build();
        ServiceRoutes detailsRoutes = ServiceRoutes.newBuilder().setServiceNamespace(NS)
                .setServiceHostname(details.getHostname())
                .addRoutes(Route.newBuilder().setName("demo/details/0").setTimeoutMs(300)
                        .addBackends(backend(details, 1)))
                .build();
        L7Authorization denyAdmin = L7Authorization.newBuilder().setName("deny-admin").setNamespace(NS)
                .setAction(Action.DENY).addTargets("Gateway/demo/waypoint")
                .addRules(L7Rule.newBuilder().addTo(L7Operation.newBuilder()
                        .addPaths(StringMatch.newBuilder().setPrefix("/admin"))))
                .build();
        return WaypointState.of(workloads, List.of(reviews, v1, v2, ratings, details),
                List.of(reviewsRoutes, ratingsRoutes, detailsRoutes), List.of(denyAdmin));
    }

    static Service service(String name, String vip) {
        return Service.newBuilder().setName(name).setNamespace(NS).setHostname(name + ".demo.svc.cluster.local")
                .addAddresses(NetworkAddress.newBuilder().setAddress(ip(vip)))
                .addPorts(Port.newBuilder().setServicePort(9080).setTargetPort(POD_PORT)).build();
    }

    static Workload pod(String name, String sa, String ip, String node, Service... backs) {
        Workload.Builder w = Workload.newBuilder().setUid("Kubernetes//Pod/demo/" + name).setName(name)
                .setNamespace(NS).setServiceAccount(sa).addAddresses(ip(ip)).setNode(node)
                .setTunnelProtocol(TunnelProtocol.HBONE).setWorkloadName(name).setCanonicalName(name);
        for (Service s : backs) {
            w.putServices(NS + "/" + s.getHostname(), PortList.newBuilder()
                    .addPorts(Port.newBuilder().setServicePort(9080).setTargetPort(POD_PORT)).build());
        }
        return w.build();
    }

    static WeightedBackend backend(Service s, int weight) {
        return WeightedBackend.newBuilder().setService(NS + "/" + s.getHostname()).setPort(9080).setWeight(weight)
                .build();
    }

    static ByteString ip(String s) {
        try {
            return ByteString.copyFrom(InetAddress.getByName(s).getAddress());
        } catch (IOException e) {
            throw new IllegalArgumentException(e);
        }
    }

    static ZtunnelNode ztunnel(String node, String nodeIp, int socks, Path mesh, Path ca) throws Exception {
        Map<String, String> p = new HashMap<>();
        p.put("ztunnel.node-name", node);
        p.put("ztunnel.node-ip", nodeIp);
        p.put("ztunnel.local-config", mesh.toString());
        p.put("ztunnel.identity.ca-dir", ca.toString());
        p.put("ztunnel.ports.hbone", Integer.toString(ZTUNNEL_HBONE));
        p.put("ztunnel.ports.socks5", Integer.toString(socks));
        p.put("ztunnel.ports.admin", "0");
        p.put("ztunnel.ports.outbound-capture", "0");
        p.put("ztunnel.ports.inbound-plaintext", "0");
        p.put("ztunnel.dataplane.threads", "2");
        ZtunnelConfig cfg = new SmallRyeConfigBuilder().withMapping(ZtunnelConfig.class)
                .withConverter(Duration.class, 100, new io.quarkus.runtime.configuration.DurationConverter())
                .withSources(new PropertiesConfigSource(p, "test", 500)).build().getConfigMapping(ZtunnelConfig.class);
        ZtunnelNode n = new ZtunnelNode(cfg, new SimpleMeterRegistry()).start();
        closeables.add(n);
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (n.certificates().status().stream().anyMatch(st -> !"valid".equals(st.state()))
                && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        return n;
    }

    /** A real HTTP server on ip:POD_PORT answering {status, delayMs} = reply(path) with {@code body}. */
    static void backend(String ip, Function<String, int[]> reply, String body) throws IOException {
        HttpServer server = HttpServer.create(new InetSocketAddress(ip, POD_PORT), 256);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        AtomicInteger count = new AtomicInteger();
        served.put(ip, count);
        server.createContext("/", ex -> {
            count.incrementAndGet();
            ex.getRequestBody().readAllBytes();
            int[] r = reply.apply(ex.getRequestURI().getPath());
            if (r[1] > 0) {
                try {
                    Thread.sleep(r[1]);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            byte[] b = body.getBytes(StandardCharsets.UTF_8);
            try {
                ex.sendResponseHeaders(r[0], b.length);
                try (OutputStream out = ex.getResponseBody()) {
                    out.write(b);
                }
            } catch (IOException gone) {
                // the waypoint gave up (timeout)
            }
        });
        server.start();
        closeables.add(() -> server.stop(0));
    }

    @AfterAll
    static void stop() {
        for (AutoCloseable c : closeables.reversed()) {
            try {
                c.close();
            } catch (Exception ignored) {
                // keep closing
            }
        }
    }

    /** The client pod's connection to a service VIP, captured by its node's ztunnel (SOCKS5 here). */
    static Socket connect(String vip) throws IOException {
        Socket s = new Socket(new Proxy(Proxy.Type.SOCKS, SOCKS_A));
        s.setSoTimeout(20_000);
        s.bind(new InetSocketAddress("127.0.85.1", 0));
        s.connect(new InetSocketAddress(InetAddress.getByName(vip), 9080), 10_000);
        return s;
    }

    record Response(int status, String body) {
    }

    /** One HTTP/1.1 request on a kept-alive connection; reads exactly one response (Content-Length). */
    static Response exchange(Socket s, String path) throws IOException {
        OutputStream out = s.getOutputStream();
        out.write(("GET " + path + " HTTP/1.1\r\nHost: svc\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
        out.flush();
        InputStream in = s.getInputStream();
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        int state = 0;
        while (state < 4) {
            int c = in.read();
            if (c < 0) {
                throw new IOException("connection closed in the response head: " + head);
            }
            head.write(c);
            state = (c == '\r' && (state == 0 || state == 2)) || (c == '\n' && (state == 1 || state == 3)) ? state + 1
                    : (c == '\r' ? 1 : 0);
        }
        String[] lines = head.toString(StandardCharsets.US_ASCII).split("\r\n");
        int status = Integer.parseInt(lines[0].split(" ")[1]);
        int length = 0;
        for (String l : lines) {
            if (l.toLowerCase().startsWith("content-length:")) {
                length = Integer.parseInt(l.substring(15).trim());
            }
        }
        return new Response(status, new String(in.readNBytes(length), StandardCharsets.UTF_8));
    }

    @Test
    void ninetyTenSplitOverAThousandRequests() throws Exception {
        int v2 = 0;
        try (Socket s = connect("127.0.88.10")) {
            for (int i = 0; i < 1000; i++) {
                Response r = exchange(s, "/reviews/" + i);
                assertEquals(200, r.status(), r.body());
                if (r.body().equals("reviews v2")) {
                    v2++;
                } else {
                    assertEquals("reviews v1", r.body());
                }
            }
        }
        // Binomial(1000, 0.1): mean 100, sd 9.5; 4.5 sd either side fails a correct split once in ~150,000 runs.
        assertTrue(v2 >= 57 && v2 <= 143, "v2 got " + v2 + " of 1000");
    }

    @Test
    void l7DenyByPath() throws Exception {
        int before = served.get("127.0.86.1").get() + served.get("127.0.86.2").get();
        try (Socket s = connect("127.0.88.10")) {
            Response denied = exchange(s, "/admin/config");
            assertEquals(403, denied.status());
            assertEquals("RBAC: access denied", denied.body());
            assertEquals(200, exchange(s, "/reviews/1").status(), "the same connection goes on");
        }
        assertEquals(before + 1, served.get("127.0.86.1").get() + served.get("127.0.86.2").get());
    }

    @Test
    void retriesHideAFailingEndpoint() throws Exception {
        try (Socket s = connect("127.0.88.20")) {
            for (int i = 0; i < 20; i++) {
                Response r = exchange(s, "/ratings/" + i);
                assertEquals(200, r.status(), r.body());
                assertEquals("ratings b", r.body());
            }
        }
        assertTrue(served.get("127.0.86.3").get() > 0, "the broken endpoint was tried and hidden");
    }

    @Test
    void timeoutFires() throws Exception {
        try (Socket s = connect("127.0.88.30")) {
            long start = System.nanoTime();
            Response r = exchange(s, "/details");
            long ms = (System.nanoTime() - start) / 1_000_000;
            assertEquals(504, r.status());
            assertEquals("upstream request timeout", r.body());
            assertTrue(ms >= 290 && ms < 1_800, "after " + ms + " ms");
        }
    }

    @Test
    void theDestinationZtunnelSeesTheWaypointsIdentity() throws Exception {
        try (Socket s = connect("127.0.88.10")) {
            assertEquals(200, exchange(s, "/who").status());
        }
        // node-b's ztunnel accepted HBONE from the waypoint (its pool key on our side names it).
        String dump = nodeB.registry().getMeters().stream()
                .filter(m -> m.getId().getName().startsWith("istio_tcp_connections_opened"))
                .map(m -> m.getId().getTags().toString()).reduce("", String::concat);
        assertTrue(dump.contains("spiffe://cluster.local/ns/demo/sa/waypoint"), dump);
    }
}
