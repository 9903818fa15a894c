package dev.ambient.xds.discovery;

import static dev.ambient.xds.discovery.Fixtures.authorization;
import static dev.ambient.xds.discovery.Fixtures.isService;
import static dev.ambient.xds.discovery.Fixtures.isWorkload;
import static dev.ambient.xds.discovery.Fixtures.l7;
import static dev.ambient.xds.discovery.Fixtures.peerAuthentication;
import static dev.ambient.xds.discovery.Fixtures.relabel;
import static dev.ambient.xds.discovery.Fixtures.replace;
import static dev.ambient.xds.discovery.Fixtures.routes;
import static dev.ambient.xds.discovery.Fixtures.service;
import static dev.ambient.xds.discovery.Fixtures.svcKey;
import static dev.ambient.xds.discovery.Fixtures.uid;
import static dev.ambient.xds.discovery.Fixtures.versions;
import static dev.ambient.xds.discovery.Fixtures.workload;
import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Message;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.l7.JwtRule;
import dev.ambient.proto.l7.L7Authentication;
import dev.ambient.proto.discovery.DeltaDiscoveryResponse;
import dev.ambient.proto.discovery.Resource;
import dev.ambient.proto.workload.Workload;
import dev.ambient.xds.model.MeshSnapshot;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import jakarta.inject.Inject;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.stream.Collectors;
import org.jboss.logmanager.ExtLogRecord;
import org.junit.jupiter.api.Test;

/**
 * The delta discovery server against real gRPC clients on the test port, with a model the test
 * sets: subscription, O(1) deltas, removals, reconnects, NACKs, waypoint scoping, slow clients.
 */
@QuarkusTest
@TestProfile(DiscoveryTestProfile.class)
class DeltaDiscoveryServiceTest {

    static final List<String> ZT = ResourceTypes.ZTUNNEL_TYPES;
    static final List<String> WP = List.of(ResourceTypes.SERVICE_ROUTES, ResourceTypes.L7_AUTHORIZATION,
            ResourceTypes.SERVICE, ResourceTypes.WORKLOAD);

    @Inject
    MutableMeshModel model;

    /**
     * shop/cart is behind shop's waypoint and routes to shop/pay; bank/ledger is behind bank's.
     */
    static List<Message> world() {
        List<Message> w = new ArrayList<>();
        w.add(service("shop", "cart", 1, "shop"));
        w.add(service("shop", "pay", 2, null));
        w.add(service("bank", "ledger", 3, "bank"));
        w.add(workload("shop", "cart-1", "cart", 1, "node-a"));
        w.add(workload("shop", "cart-2", "cart", 2, "node-b"));
        w.add(workload("shop", "pay-1", "pay", 3, "node-a"));
        w.add(workload("bank", "ledger-1", "ledger", 4, "node-b"));
        w.add(authorization("shop", "allow-frontend"));
        w.add(authorization("bank", "deny-shop"));
        w.add(peerAuthentication("istio-system", "default"));
        w.add(routes("shop", "cart", svcKey("shop", "pay")));
        w.add(routes("bank", "ledger", svcKey("bank", "ledger")));
        w.add(l7("shop", "gateway-policy", "Gateway/shop/waypoint"));
        w.add(l7("shop", "cart-policy", "Service/shop/" + Fixtures.host("shop", "cart")));
        w.add(l7("bank", "ledger-policy", "Gateway/bank/waypoint"));
        w.add(l7("bank", "other", "Service/bank/" + Fixtures.host("bank", "ledger")));
        return w;
    }

    private static Set<String> names(DeltaDiscoveryResponse r) {
        return r.getResourcesList().stream().map(Resource::getName).collect(Collectors.toSet());
    }

    /** One client's entry of GET /debug/connections. */
    static JsonObject debugConnection(String nodeId) {
        String body = given().port(XdsTestClient.debugPort()).get("/debug/connections").then().statusCode(200).extract().asString();
        JsonArray clients = new JsonObject(body).getJsonArray("clients");
        for (int i = 0; i < clients.size(); i++) {
            if (nodeId.equals(clients.getJsonObject(i).getString("nodeId"))) {
                return clients.getJsonObject(i);
            }
        }
        throw new AssertionError(nodeId + " not in " + body);
    }

    static JsonObject debugTypeState(String nodeId, String type) {
        return debugConnection(nodeId).getJsonObject("types").getJsonObject(type);
    }

    @Test
    void initialWildcardSubscriptionGetsEverythingAZtunnelMaySee() {
        MeshSnapshot s = model.set(world());
        try (XdsTestClient c = XdsTestClient.ztunnel("initial")) {
            ZT.forEach(c::subscribe);
            Map<String, DeltaDiscoveryResponse> got = c.nextAckedPerType(ZT);
            for (String type : ZT) {
                assertEquals(s.resources(type).keySet(), names(got.get(type)), type);
                assertEquals(0, got.get(type).getRemovedResourcesCount());
                assertFalse(got.get(type).getNonce().isEmpty());
                assertEquals(versions(s, type), c.held(type));
            }
            Resource r = got.get(ResourceTypes.WORKLOAD).getResources(0);
            assertEquals(ResourceTypes.WORKLOAD, r.getResource().getTypeUrl());
            c.expectNothing(300);
        }
    }

    @Test
    void changingOneWorkloadSendsExactlyThatWorkload() throws Exception {
        List<Message> w = world();
        model.set(w);
        try (XdsTestClient c = XdsTestClient.ztunnel("one-change")) {
            ZT.forEach(c::subscribe);
            c.nextAckedPerType(ZT);
            String cart1 = uid("shop", "cart-1");
            MeshSnapshot s = model.set(replace(w, isWorkload(cart1), m -> relabel(m, "v2")));
            DeltaDiscoveryResponse r = c.nextAcked();
            assertEquals(ResourceTypes.WORKLOAD, r.getTypeUrl());
            assertEquals(Set.of(cart1), names(r));
            assertEquals(0, r.getRemovedResourcesCount());
            assertEquals("v2", r.getResources(0).getResource().unpack(Workload.class).getCanonicalRevision());
            assertEquals(s.resources(ResourceTypes.WORKLOAD).get(cart1).version(), r.getResources(0).getVersion());
            c.expectNothing(300);

            // The same content again (a recomputation with no change) sends nothing.
            model.set(replace(w, isWorkload(cart1), m -> relabel(m, "v2")));
            c.expectNothing(300);
        }
    }

    @Test
    void removalIsSentAsRemovedResources() {
        List<Message> w = world();
        model.set(w);
        try (XdsTestClient c = XdsTestClient.ztunnel("removal")) {
            ZT.forEach(c::subscribe);
            c.nextAckedPerType(ZT);
            String pay1 = uid("shop", "pay-1");
            model.set(replace(w, isWorkload(pay1), m -> null));
            DeltaDiscoveryResponse r = c.nextAcked();
            assertEquals(ResourceTypes.WORKLOAD, r.getTypeUrl());
            assertEquals(0, r.getResourcesCount());
            assertEquals(List.of(pay1), r.getRemovedResourcesList());
            assertFalse(c.held(ResourceTypes.WORKLOAD).containsKey(pay1));
            c.expectNothing(300);
        }
    }

    @Test
    void reconnectWithInitialVersionsGetsOnlyTheDifferences() {
        List<Message> w = world();
        model.set(w);
        Map<String, Map<String, String>> held = new HashMap<>();
        try (XdsTestClient c = XdsTestClient.ztunnel("reconnect")) {
            ZT.forEach(c::subscribe);
            c.nextAckedPerType(ZT);
            ZT.forEach(t -> held.put(t, Map.copyOf(c.held(t))));
        }
        // While disconnected: one workload changes, one goes, one comes.
        String cart1 = uid("shop", "cart-1");
        String pay1 = uid("shop", "pay-1");
        List<Message> next = replace(w, isWorkload(cart1), m -> relabel(m, "v3"));
        next = replace(next, isWorkload(pay1), m -> null);
        next.add(workload("shop", "cart-3", "cart", 9, "node-a"));
        MeshSnapshot s = model.set(next);
        Map<String, String> heldWorkloads = new HashMap<>(held.get(ResourceTypes.WORKLOAD));
        heldWorkloads.put(uid("shop", "ghost"), "0123");

        try (XdsTestClient c = XdsTestClient.ztunnel("reconnect")) {
            for (String t : ZT) {
                c.subscribe(t, t.equals(ResourceTypes.WORKLOAD) ? heldWorkloads : held.get(t), List.of());
            }
            Map<String, DeltaDiscoveryResponse> got = c.nextAckedPerType(ZT);
            DeltaDiscoveryResponse wl = got.get(ResourceTypes.WORKLOAD);
            assertEquals(Set.of(cart1, uid("shop", "cart-3")), names(wl));
            assertEquals(Set.of(pay1, uid("shop", "ghost")), Set.copyOf(wl.getRemovedResourcesList()));
            for (String t : List.of(ResourceTypes.SERVICE, ResourceTypes.AUTHORIZATION,
                    ResourceTypes.PEER_AUTHENTICATION)) {
                // Nothing changed: an empty response, so that the client knows it is in sync.
                assertEquals(0, got.get(t).getResourcesCount(), t);
                assertEquals(0, got.get(t).getRemovedResourcesCount(), t);
            }
            c.held.put(ResourceTypes.WORKLOAD, new java.util.concurrent.ConcurrentHashMap<>(heldWorkloads));
            c.apply(wl);
            assertEquals(versions(s, ResourceTypes.WORKLOAD), c.held(ResourceTypes.WORKLOAD));
            c.expectNothing(300);
        }
    }

    @Test
    void nackIsLoggedAndTheStreamGoesOn() {
        List<LogRecord> logged = new CopyOnWriteArrayList<>();
        Handler h = new Handler() {
            @Override
            public void publish(LogRecord r) {
                logged.add(r);
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        Logger log = Logger.getLogger(ClientConnection.class.getName());
        log.addHandler(h);
        List<Message> w = world();
        model.set(w);
        try (XdsTestClient c = XdsTestClient.ztunnel("nack")) {
            ZT.forEach(c::subscribe);
            c.nextAckedPerType(ZT);
            String cart1 = uid("shop", "cart-1");
            w = replace(w, isWorkload(cart1), m -> relabel(m, "bad"));
            model.set(w);
            DeltaDiscoveryResponse refused = c.next();
            assertEquals(Set.of(cart1), names(refused));
            c.nack(refused, "canonical revision \"bad\" is not allowed");

            // The stream goes on: the next change arrives, and only it (not the world, not the refused one).
            String cart2 = uid("shop", "cart-2");
            w = replace(w, isWorkload(cart2), m -> relabel(m, "v2"));
            model.set(w);
            DeltaDiscoveryResponse r = c.nextAcked();
            assertEquals(Set.of(cart2), names(r));
            assertNull(c.error);

            List<String> lines = logged.stream().map(l -> l instanceof ExtLogRecord e ? e.getFormattedMessage()
                    : l.getMessage()).filter(m -> m.contains("NACK")).toList();
            assertEquals(1, lines.size(), () -> "NACK log lines: " + lines);
            String line = lines.get(0);
            assertTrue(line.contains("ztunnel~nack-") && line.contains("type=Workload")
                    && line.contains("nonce=" + refused.getNonce()) && line.contains("is not allowed"), line);
            assertFalse(line.contains("\n"));

            given().port(XdsTestClient.metricsPort()).get("/metrics").then().statusCode(200)
                    .body(containsString("pilot_total_xds_rejects_total{type=\"Workload\""));
            assertEquals(1, debugTypeState("ztunnel~nack", ResourceTypes.WORKLOAD).getInteger("nacks"));
        } finally {
            log.removeHandler(h);
        }
    }

    @Test
    void aWaypointSeesOnlyWhatItServes() {
        List<Message> w = world();
        model.set(w);
        try (XdsTestClient c = XdsTestClient.waypoint("shop/waypoint")) {
            WP.forEach(c::subscribe);
            Map<String, DeltaDiscoveryResponse> got = c.nextAckedPerType(WP);
            assertEquals(Set.of(svcKey("shop", "cart")), names(got.get(ResourceTypes.SERVICE_ROUTES)));
            assertEquals(Set.of("shop/gateway-policy", "shop/cart-policy"),
                    names(got.get(ResourceTypes.L7_AUTHORIZATION)));
            // Its service and the route's backend, and the workloads behind them.
            assertEquals(Set.of(svcKey("shop", "cart"), svcKey("shop", "pay")), names(got.get(ResourceTypes.SERVICE)));
            assertEquals(Set.of(uid("shop", "cart-1"), uid("shop", "cart-2"), uid("shop", "pay-1")),
                    names(got.get(ResourceTypes.WORKLOAD)));

            // bank/ledger moves to shop's waypoint: its route, service and workload come; its
            // policies aimed at bank's Gateway do not, the one aimed at the service does.
            String ledger = svcKey("bank", "ledger");
            List<Message> moved = replace(w, isService(ledger), m -> service("bank", "ledger", 3, "shop"));
            model.set(moved);
            Map<String, DeltaDiscoveryResponse> more = c.nextAckedPerType(WP);
            assertEquals(Set.of(ledger), names(more.get(ResourceTypes.SERVICE_ROUTES)));
            assertEquals(Set.of(ledger), names(more.get(ResourceTypes.SERVICE)));
            assertEquals(Set.of(uid("bank", "ledger-1")), names(more.get(ResourceTypes.WORKLOAD)));
            assertEquals(Set.of("bank/other"), names(more.get(ResourceTypes.L7_AUTHORIZATION)));

            // Back to bank's waypoint: all of it is removed.
            model.set(w);
            Map<String, DeltaDiscoveryResponse> back = c.nextAckedPerType(WP);
            assertEquals(List.of(ledger), back.get(ResourceTypes.SERVICE_ROUTES).getRemovedResourcesList());
            assertEquals(List.of(ledger), back.get(ResourceTypes.SERVICE).getRemovedResourcesList());
            assertEquals(List.of(uid("bank", "ledger-1")), back.get(ResourceTypes.WORKLOAD).getRemovedResourcesList());
            assertEquals(List.of("bank/other"), back.get(ResourceTypes.L7_AUTHORIZATION).getRemovedResourcesList());

            // A change elsewhere in the mesh (a bank workload it does not serve) sends nothing.
            model.set(replace(w, isWorkload(uid("bank", "ledger-1")), m -> relabel(m, "v9")));
            c.expectNothing(300);
        }
    }

    @Test
    void aWaypointGetsTheRequestAuthenticationsAimedAtItAndAZtunnelNone() {
        List<Message> w = world();
        w.add(authn("shop", "jwt", "Gateway/shop/waypoint"));
        w.add(authn("shop", "cart-jwt", "Service/shop/" + Fixtures.host("shop", "cart")));
        w.add(authn("bank", "jwt", "Gateway/bank/waypoint"));
        model.set(w);
        try (XdsTestClient wp = XdsTestClient.waypoint("shop/waypoint"); XdsTestClient z = XdsTestClient.ztunnel("no-jwt")) {
            wp.subscribe(ResourceTypes.L7_AUTHENTICATION);
            DeltaDiscoveryResponse got = wp.nextAcked();
            assertEquals(Set.of("shop/jwt", "shop/cart-jwt"), names(got));
            L7Authentication first = got.getResources(0).getResource().unpack(L7Authentication.class);
            assertEquals("https://issuer." + first.getNamespace(), first.getJwtRules(0).getIssuer());
            z.subscribe(ResourceTypes.L7_AUTHENTICATION);
            assertEquals(0, z.nextAcked().getResourcesCount());
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
            throw new AssertionError(e);
        }
    }

    private static L7Authentication authn(String ns, String name, String target) {
        return L7Authentication.newBuilder().setNamespace(ns).setName(name).addTargets(target)
                .addJwtRules(JwtRule.newBuilder().setIssuer("https://issuer." + ns).setJwksUri("https://keys/" + ns))
                .build();
    }

    @Test
    void aWaypointGetsNoL4TypesAndAZtunnelNoL7Types() {
        model.set(world());
        try (XdsTestClient z = XdsTestClient.ztunnel("no-l7"); XdsTestClient wp = XdsTestClient.waypoint("bank/waypoint")) {
            z.subscribe(ResourceTypes.SERVICE_ROUTES);
            assertEquals(0, z.nextAcked().getResourcesCount());
            wp.subscribe(ResourceTypes.AUTHORIZATION);
            assertEquals(0, wp.nextAcked().getResourcesCount());
        }
    }

    @Test
    void explicitNameSubscriptionsAreHonoured() throws InterruptedException {
        List<Message> w = world();
        model.set(w);
        String cart1 = uid("shop", "cart-1");
        String cart2 = uid("shop", "cart-2");
        String pay1 = uid("shop", "pay-1");
        try (XdsTestClient c = XdsTestClient.ztunnel("explicit")) {
            c.subscribe(ResourceTypes.WORKLOAD, Map.of(), List.of(cart1, uid("shop", "missing")));
            DeltaDiscoveryResponse r = c.nextAcked();
            assertEquals(Set.of(cart1), names(r));
            assertEquals(List.of(uid("shop", "missing")), r.getRemovedResourcesList());

            c.subscribeMore(ResourceTypes.WORKLOAD, List.of(pay1), List.of());
            assertEquals(Set.of(pay1), names(c.nextAcked()));

            // Not subscribed: no push.
            w = replace(w, isWorkload(cart2), m -> relabel(m, "v2"));
            model.set(w);
            c.expectNothing(300);

            c.subscribeMore(ResourceTypes.WORKLOAD, List.of(), List.of(cart1));
            // Requests and snapshots race; wait until the server has taken the unsubscription.
            long end = System.currentTimeMillis() + 5000;
            while (debugTypeState("ztunnel~explicit", ResourceTypes.WORKLOAD).getInteger("subscribed") != 1
                    && System.currentTimeMillis() < end) {
                Thread.sleep(20);
            }
            w = replace(w, isWorkload(cart1), m -> relabel(m, "v2"));
            model.set(w);
            c.expectNothing(300);

            w = replace(w, isWorkload(pay1), m -> relabel(m, "v2"));
            model.set(w);
            assertEquals(Set.of(pay1), names(c.nextAcked()));
        }
    }

    @Test
    void twoClientsAtDifferentPacesBothConverge() {
        List<Message> w = world();
        model.set(w);
        try (XdsTestClient fast = XdsTestClient.ztunnel("fast"); XdsTestClient slow = XdsTestClient.ztunnel("slow")) {
            fast.subscribe(ResourceTypes.WORKLOAD);
            slow.subscribe(ResourceTypes.WORKLOAD);
            fast.nextAcked();
            slow.nextAcked();
            String cart1 = uid("shop", "cart-1");
            String cart2 = uid("shop", "cart-2");

            // Change 1: both get it; the slow one does not ACK yet.
            w = replace(w, isWorkload(cart1), m -> relabel(m, "r1"));
            model.set(w);
            assertEquals(Set.of(cart1), names(fast.nextAcked()));
            DeltaDiscoveryResponse unacked = slow.next();
            assertEquals(Set.of(cart1), names(unacked));
            slow.apply(unacked);

            // Changes 2..6 while the slow client sits on its response.
            for (int i = 2; i <= 5; i++) {
                w = replace(w, isWorkload(cart1), m -> relabel(m, "r" + System.nanoTime()));
                model.set(w);
                assertEquals(Set.of(cart1), names(fast.nextAcked()));
            }
            w = replace(w, isWorkload(cart2), m -> null);
            w.add(workload("shop", "cart-9", "cart", 99, "node-c"));
            MeshSnapshot last = model.set(w);
            while (!fast.held(ResourceTypes.WORKLOAD).equals(versions(last, ResourceTypes.WORKLOAD))) {
                fast.nextAcked();
            }
            slow.expectNothing(300);

            // The slow client ACKs: it gets one response with the net difference, not five.
            slow.ack(unacked);
            DeltaDiscoveryResponse coalesced = slow.nextAcked();
            assertEquals(Set.of(cart1, uid("shop", "cart-9")), names(coalesced));
            assertEquals(List.of(cart2), coalesced.getRemovedResourcesList());
            assertEquals(versions(last, ResourceTypes.WORKLOAD), slow.held(ResourceTypes.WORKLOAD));
            slow.expectNothing(200);
            fast.expectNothing(100);
        }
    }

    @Test
    void aLargeResponseIsCutAndContinuedAfterEachAck() {
        List<Message> w = world();
        for (int i = 0; i < 2000; i++) {
            w.add(workload("big", "pod-" + i, "cart", 1000 + i, "node-a"));
        }
        MeshSnapshot s = model.set(w);
        try (XdsTestClient c = XdsTestClient.ztunnel("large")) {
            c.subscribe(ResourceTypes.WORKLOAD);
            int responses = 0;
            while (!c.held(ResourceTypes.WORKLOAD).equals(versions(s, ResourceTypes.WORKLOAD))) {
                DeltaDiscoveryResponse r = c.next();
                assertTrue(r.getSerializedSize() < 100_000 + 1_000, "response of " + r.getSerializedSize() + " bytes");
                // The next part waits for this one's ACK.
                c.expectNothing(50);
                c.apply(r);
                c.ack(r);
                responses++;
            }
            assertTrue(responses >= 5, responses + " responses");
            c.expectNothing(200);
        }
    }

    @Test
    void nothingIsServedBeforeTheModelIsSynced() {
        model.set(world());
        model.setSynced(false);
        try (XdsTestClient c = XdsTestClient.ztunnel("unsynced")) {
            c.subscribe(ResourceTypes.WORKLOAD);
            c.expectNothing(500);
            model.setSynced(true);
            assertEquals(4, c.nextAcked().getResourcesCount());
        } finally {
            model.setSynced(true);
        }
    }

    @Test
    void aWaypointWithoutAGatewayIsRefused() throws InterruptedException {
        try (XdsTestClient c = new XdsTestClient(XdsTestClient.waypointNode("no-namespace"), XdsTestClient.channel(),
                dev.ambient.xds.XdsTestTls.waypointToken("default/waypoint"), false, null)) {
            c.subscribe(ResourceTypes.SERVICE_ROUTES);
            long end = System.currentTimeMillis() + 5000;
            while (c.error == null && System.currentTimeMillis() < end) {
                Thread.sleep(10);
            }
            assertTrue(String.valueOf(c.error).contains("INVALID_ARGUMENT"), String.valueOf(c.error));
        }
    }

    @Test
    void debugPagesAndMetricsDescribeTheClients() throws InterruptedException {
        model.set(world());
        try (XdsTestClient c = XdsTestClient.ztunnel("debug"); XdsTestClient wp = XdsTestClient.waypoint("shop/waypoint")) {
            ZT.forEach(c::subscribe);
            c.nextAckedPerType(ZT);
            WP.forEach(wp::subscribe);
            wp.nextAckedPerType(WP);
            JsonObject z = debugConnection("ztunnel~debug");
            assertEquals("ztunnel", z.getString("role"));
            assertEquals(4, debugTypeState("ztunnel~debug", ResourceTypes.WORKLOAD).getInteger("resources"));
            JsonObject w = debugConnection("waypoint~shop/waypoint~pod-1");
            assertEquals("shop/waypoint", w.getString("gateway"));
            assertEquals(1, w.getJsonObject("types").getJsonObject(ResourceTypes.SERVICE_ROUTES).getInteger("resources"));
            // The ACK travels asynchronously; wait for it to be recorded.
            long end = System.currentTimeMillis() + 5000;
            String acked = null;
            while (acked == null && System.currentTimeMillis() < end) {
                acked = debugTypeState("ztunnel~debug", ResourceTypes.WORKLOAD).getString("lastAckedNonce");
                Thread.sleep(20);
            }
            assertTrue(acked != null && !acked.isEmpty());
            JsonObject snap = new JsonObject(given().port(XdsTestClient.debugPort()).get("/debug/snapshot").then().statusCode(200).extract().asString());
            assertEquals(4, snap.getJsonObject("resources").getInteger(ResourceTypes.WORKLOAD));
            assertEquals(4, snap.getJsonObject("resources").getInteger(ResourceTypes.L7_AUTHORIZATION));
            assertTrue(snap.getBoolean("synced"));
            given().port(XdsTestClient.metricsPort()).get("/metrics").then().statusCode(200)
                    .body(containsString("pilot_xds{type=\"ztunnel\""))
                    .body(containsString("pilot_xds{type=\"waypoint\""))
                    .body(containsString("pilot_xds_pushes_total{type=\"Workload\""))
                    .body(containsString("pilot_proxy_convergence_time_bucket"));
        }
    }
}
