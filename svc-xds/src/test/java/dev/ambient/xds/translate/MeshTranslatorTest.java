package dev.ambient.xds.translate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Message;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.l7.HeaderMatch;
import dev.ambient.proto.l7.HeaderMutation;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.PathMatch;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.l7.WeightedBackend;
import dev.ambient.proto.workload.Action;
import dev.ambient.proto.workload.Authorization;
import dev.ambient.proto.workload.Cidr;
import dev.ambient.proto.workload.Clause;
import dev.ambient.proto.workload.Match;
import dev.ambient.proto.workload.PeerAuthentication;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Rule;
import dev.ambient.proto.workload.Scope;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.StringMatch;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.proto.workload.WorkloadStatus;
import dev.ambient.xds.model.MeshSnapshot;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import java.net.InetAddress;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** The translation of Istio users' YAML (src/test/resources/istio) into the discovery resources. */
class MeshTranslatorTest {

    static final String SHOP = "Kubernetes//Pod/shop/";
    static final MeshTranslator TRANSLATOR = new MeshTranslator();

    static Translation translate(String... fixtures) {
        return TRANSLATOR.translate(Fixtures.input(fixtures), 7);
    }

    @SuppressWarnings("unchecked")
    static <T extends Message> T get(MeshSnapshot s, String type, String name) {
        MeshSnapshot.Entry e = s.resources(type).get(name);
        assertNotNull(e, "no " + type + " named " + name + "; have " + s.resources(type).keySet());
        return (T) e.resource();
    }

    static ByteString ip(String text) throws Exception {
        return ByteString.copyFrom(InetAddress.ofLiteral(text).getAddress());
    }

    static StringMatch exact(String s) {
        return StringMatch.newBuilder().setExact(s).build();
    }

    static Cidr cidr(String ip, int len) throws Exception {
        return Cidr.newBuilder().setAddress(ip(ip)).setLength(len).build();
    }

    @Test
    void ambientPodsAreHboneWorkloadsWithTheirServicePortsResolved() throws Exception {
        Translation t = translate("bookinfo.yaml");
        MeshSnapshot s = t.snapshot();
        assertEquals(7, s.generation());

        Workload pp = get(s, ResourceTypes.WORKLOAD, SHOP + "productpage-v1-7d9f8c6b5-x2k4q");
        assertEquals("productpage-v1-7d9f8c6b5-x2k4q", pp.getName());
        assertEquals("shop", pp.getNamespace());
        assertEquals(List.of(ip("10.244.1.5")), pp.getAddressesList());
        assertEquals("bookinfo-productpage", pp.getServiceAccount());
        assertEquals("node-a", pp.getNode());
        assertEquals(ip("172.18.0.2"), pp.getNodeAddress());
        assertEquals(TunnelProtocol.HBONE, pp.getTunnelProtocol());
        assertEquals(WorkloadStatus.HEALTHY, pp.getStatus());
        assertEquals("productpage", pp.getCanonicalName());
        assertEquals("v1", pp.getCanonicalRevision());
        assertEquals("productpage-v1", pp.getWorkloadName(), "ReplicaSet name minus the pod-template-hash");
        assertEquals("", pp.getTrustDomain(), "empty: the default, cluster.local");
        assertEquals("Kubernetes", pp.getClusterId());
        // The named targetPort "http" is resolved against the pod's container port.
        assertEquals(Map.of("shop/productpage.shop.svc.cluster.local", PortList.newBuilder()
                .addPorts(Port.newBuilder().setServicePort(9080).setTargetPort(9080)).build()), pp.getServicesMap());

        Service productpage = get(s, ResourceTypes.SERVICE, "shop/productpage.shop.svc.cluster.local");
        assertEquals("productpage", productpage.getName());
        assertEquals(ip("10.96.0.10"), productpage.getAddresses(0).getAddress());
        assertEquals(List.of(Port.newBuilder().setServicePort(9080).setTargetPort(0).setAppProtocol("http").build()),
                productpage.getPortsList(), "a named target port is left to each workload's mapping; "
                        + "the port name says http");

        Service reviews = get(s, ResourceTypes.SERVICE, "shop/reviews.shop.svc.cluster.local");
        assertEquals(List.of(Port.newBuilder().setServicePort(9080).setTargetPort(9080).setAppProtocol("http").build()),
                reviews.getPortsList(), "UDP ports are not served");

        Workload v1 = get(s, ResourceTypes.WORKLOAD, SHOP + "reviews-v1-5b6d8f9c7-abcde");
        assertEquals(List.of("shop/reviews-v1.shop.svc.cluster.local", "shop/reviews.shop.svc.cluster.local"),
                v1.getServicesMap().keySet().stream().sorted().toList());

        Workload v2 = get(s, ResourceTypes.WORKLOAD, SHOP + "reviews-v2-6c7e9a0d8-fghij");
        assertEquals(WorkloadStatus.UNHEALTHY, v2.getStatus(), "not Ready");
        assertEquals(List.of(ip("10.244.2.7"), ip("fd00:10:244:2::7")), v2.getAddressesList());
        assertEquals("reviews-v2-6c7e9a0d8-fghij", v2.getWorkloadName(), "no owner: the pod's name");
        assertEquals("reviews", v2.getCanonicalName());
        assertEquals("v2", v2.getCanonicalRevision());
    }

    @Test
    void portProtocolsAreReadAsIstioReadsThem() {
        assertEquals("grpc", MeshTranslator.appProtocol(servicePort("api", "grpc")), "appProtocol first");
        assertEquals("http2", MeshTranslator.appProtocol(servicePort(null, "kubernetes.io/h2c")));
        assertEquals("http2", MeshTranslator.appProtocol(servicePort("http2-api", null)));
        assertEquals("grpc", MeshTranslator.appProtocol(servicePort("grpc", null)));
        assertEquals("grpc-web", MeshTranslator.appProtocol(servicePort("grpc-web-ui", null)));
        assertEquals("tcp", MeshTranslator.appProtocol(servicePort("tcp-db", null)));
        assertEquals("", MeshTranslator.appProtocol(servicePort("web", null)), "not a protocol name");
        assertEquals("", MeshTranslator.appProtocol(servicePort("httpbin", null)), "a prefix only before a dash");
        assertEquals("", MeshTranslator.appProtocol(servicePort(null, null)));
    }

    private static io.fabric8.kubernetes.api.model.ServicePort servicePort(String name, String appProtocol) {
        return new io.fabric8.kubernetes.api.model.ServicePortBuilder().withName(name).withAppProtocol(appProtocol)
                .withPort(80).build();
    }

    @Test
    void optedOutAndNonAmbientPodsArePublishedAsTcpAndPendingPodsAreSkipped() {
        MeshSnapshot s = translate("bookinfo.yaml").snapshot();
        Workload ratings = get(s, ResourceTypes.WORKLOAD, SHOP + "ratings-v1-0");
        assertEquals(TunnelProtocol.NONE, ratings.getTunnelProtocol(), "istio.io/dataplane-mode=none");
        assertFalse(ratings.hasWaypoint());
        assertEquals("default", ratings.getServiceAccount());
        assertEquals("latest", ratings.getCanonicalRevision());
        Workload sleep = get(s, ResourceTypes.WORKLOAD, "Kubernetes//Pod/legacy/sleep");
        assertEquals(TunnelProtocol.NONE, sleep.getTunnelProtocol(), "namespace not in the mesh");
        assertFalse(sleep.hasWaypoint());
        assertNull(s.resources(ResourceTypes.WORKLOAD).get(SHOP + "details-v1-pending"), "not running, no IP");
        // The headless service: published without a VIP.
        Service ratingsSvc = get(s, ResourceTypes.SERVICE, "shop/ratings.shop.svc.cluster.local");
        assertEquals(0, ratingsSvc.getAddressesCount());
        assertFalse(ratingsSvc.hasWaypoint(), "istio.io/use-waypoint=none on the service");
    }

    @Test
    void theNamespaceWaypointIsGivenToWorkloadsAndServicesButNotToItself() {
        MeshSnapshot s = translate("bookinfo.yaml").snapshot();
        Workload pp = get(s, ResourceTypes.WORKLOAD, SHOP + "productpage-v1-7d9f8c6b5-x2k4q");
        assertEquals("waypoint.shop.svc.cluster.local", pp.getWaypoint().getHostname().getHostname());
        assertEquals("shop", pp.getWaypoint().getHostname().getNamespace());
        Service reviews = get(s, ResourceTypes.SERVICE, "shop/reviews.shop.svc.cluster.local");
        assertEquals("waypoint.shop.svc.cluster.local", reviews.getWaypoint().getHostname().getHostname());

        Workload wp = get(s, ResourceTypes.WORKLOAD, SHOP + "waypoint-6f7b8c9d0-wxyz1");
        assertFalse(wp.hasWaypoint());
        assertEquals(TunnelProtocol.HBONE, wp.getTunnelProtocol(), "waypoints terminate HBONE themselves");
        assertTrue(wp.getServicesMap().containsKey("shop/waypoint.shop.svc.cluster.local"));
        Service wpService = get(s, ResourceTypes.SERVICE, "shop/waypoint.shop.svc.cluster.local");
        assertFalse(wpService.hasWaypoint());
    }

    @Test
    void aWaypointForServicesOnlyIsNotGivenToWorkloads() {
        List<HasMetadata> objects = Fixtures.objects("bookinfo.yaml");
        for (HasMetadata o : objects) {
            if (o instanceof GenericKubernetesResource g && g.getKind().equals("Gateway")) {
                g.getMetadata().getLabels().remove("istio.io/waypoint-for"); // Istio's default: service
            }
        }
        MeshSnapshot s = TRANSLATOR.translate(MeshInput.builder().addAll(objects).build(), 1).snapshot();
        assertFalse(((Workload) get(s, ResourceTypes.WORKLOAD, SHOP + "productpage-v1-7d9f8c6b5-x2k4q"))
                .hasWaypoint());
        assertTrue(((Service) get(s, ResourceTypes.SERVICE, "shop/reviews.shop.svc.cluster.local")).hasWaypoint());
    }

    @Test
    void selectorLessServicesTakeTheirPodsFromEndpointSlicesAndTheirReadiness() {
        MeshSnapshot s = translate("bookinfo.yaml", "endpoints.yaml").snapshot();
        Workload db0 = get(s, ResourceTypes.WORKLOAD, SHOP + "db-0");
        assertEquals(Map.of("shop/db.shop.svc.cluster.local", PortList.newBuilder()
                .addPorts(Port.newBuilder().setServicePort(5432).setTargetPort(15432)).build()), db0.getServicesMap());
        Workload db1 = get(s, ResourceTypes.WORKLOAD, SHOP + "db-1");
        assertTrue(db1.getServicesMap().isEmpty(), "its endpoint is not ready");
    }

    @Test
    void authorizationPolicyRulesBecomeClausesOfMatches() throws Exception {
        Translation t = translate("bookinfo.yaml", "policies.yaml");
        MeshSnapshot s = t.snapshot();
        Authorization viewer = get(s, ResourceTypes.AUTHORIZATION, "shop/productpage-viewer");
        assertEquals(Scope.WORKLOAD_SELECTOR, viewer.getScope());
        assertEquals(Action.ALLOW, viewer.getAction());
        assertEquals(List.of(SHOP + "productpage-v1-7d9f8c6b5-x2k4q"), viewer.getSelectedWorkloadsList());
        assertEquals(2, viewer.getRulesCount());

        Rule first = viewer.getRules(0);
        // [from, to, when source.ip, when destination.port]
        assertEquals(4, first.getClausesCount());
        Clause from = first.getClauses(0);
        assertEquals(2, from.getMatchesCount(), "one match per from[] entry");
        assertEquals(Match.newBuilder().addPrincipals(exact("cluster.local/ns/shop/sa/bookinfo-gateway"))
                .addPrincipals(StringMatch.newBuilder().setPrefix("cluster.local/ns/ops/")).build(), from.getMatches(0));
        assertEquals(Match.newBuilder().addNamespaces(exact("shop"))
                .addNotPrincipals(StringMatch.newBuilder().setSuffix("/sa/untrusted"))
                .addSourceIps(cidr("10.244.0.0", 16)).addNotSourceIps(cidr("10.244.9.9", 32)).build(),
                from.getMatches(1));
        assertEquals(Clause.newBuilder().addMatches(Match.newBuilder().addDestinationPorts(9080)
                .addNotDestinationPorts(15000)).build(), first.getClauses(1));
        assertEquals(Clause.newBuilder().addMatches(Match.newBuilder().addSourceIps(cidr("10.244.0.0", 16))).build(),
                first.getClauses(2));
        assertEquals(Clause.newBuilder().addMatches(Match.newBuilder().addNotDestinationPorts(9999)).build(),
                first.getClauses(3));
        assertEquals(Rule.getDefaultInstance(), viewer.getRules(1), "{} matches everything");

        Authorization deny = get(s, ResourceTypes.AUTHORIZATION, "shop/deny-legacy");
        assertEquals(Scope.NAMESPACE, deny.getScope());
        assertEquals(Action.DENY, deny.getAction());
        assertEquals(Match.newBuilder().addNamespaces(exact("legacy")).build(),
                deny.getRules(0).getClauses(0).getMatches(0));

        Authorization nothing = get(s, ResourceTypes.AUTHORIZATION, "istio-system/allow-nothing");
        assertEquals(Scope.GLOBAL, nothing.getScope(), "no selector in the root namespace");
        assertEquals(Action.ALLOW, nothing.getAction());
        assertEquals(0, nothing.getRulesCount(), "ALLOW without rules allows nothing");

        Authorization dry = get(s, ResourceTypes.AUTHORIZATION, "shop/audit-dry-run");
        assertTrue(dry.getDryRun());
    }

    @Test
    void peerAuthenticationModesAndSelectors() {
        MeshSnapshot s = translate("bookinfo.yaml", "policies.yaml").snapshot();
        PeerAuthentication ns = get(s, ResourceTypes.PEER_AUTHENTICATION, "shop/default");
        assertEquals(Scope.NAMESPACE, ns.getScope());
        assertEquals(PeerAuthentication.Mode.STRICT, ns.getMode());
        PeerAuthentication sel = get(s, ResourceTypes.PEER_AUTHENTICATION, "shop/reviews-metrics");
        assertEquals(Scope.WORKLOAD_SELECTOR, sel.getScope());
        assertEquals(List.of(SHOP + "reviews-v1-5b6d8f9c7-abcde", SHOP + "reviews-v2-6c7e9a0d8-fghij"),
                sel.getSelectedWorkloadsList());
        assertEquals(Map.of(9090, PeerAuthentication.Mode.PERMISSIVE), sel.getPortModesMap());
    }

    @Test
    void anHttpRouteSplittingTrafficBecomesWeightedServiceRoutes() {
        Translation t = translate("bookinfo.yaml", "policies.yaml");
        ServiceRoutes routes = get(t.snapshot(), ResourceTypes.SERVICE_ROUTES, "shop/reviews.shop.svc.cluster.local");
        assertEquals("shop", routes.getServiceNamespace());
        assertEquals(List.of(9080), routes.getPortsList());
        assertEquals(List.of("shop/reviews"), routes.getSourcesList());
        assertEquals(2, routes.getRoutesCount());

        // The longer prefix with a header match comes first.
        Route canary = routes.getRoutes(0);
        assertEquals(PathMatch.Kind.PREFIX, canary.getMatches(0).getPath().getKind());
        assertEquals("/reviews", canary.getMatches(0).getPath().getValue());
        assertEquals(HeaderMatch.newBuilder().setKind(HeaderMatch.Kind.EXACT).setName("x-canary").setValue("true")
                .build(), canary.getMatches(0).getHeaders(0));
        assertEquals(List.of(WeightedBackend.newBuilder().setService("shop/reviews-v2.shop.svc.cluster.local")
                .setPort(9080).setWeight(1).build()), canary.getBackendsList());

        Route split = routes.getRoutes(1);
        assertEquals("/", split.getMatches(0).getPath().getValue(), "a rule without matches matches everything");
        assertEquals(List.of(90, 10), split.getBackendsList().stream().map(WeightedBackend::getWeight).toList());
        assertEquals(List.of("shop/reviews-v1.shop.svc.cluster.local", "shop/reviews-v2.shop.svc.cluster.local"),
                split.getBackendsList().stream().map(WeightedBackend::getService).toList());
        assertEquals(10_000, split.getTimeoutMs());
        assertEquals(2, split.getRetry().getAttempts());
        assertEquals(100, split.getRetry().getBackoffBaseMs());
        assertEquals(List.of("connect-failure", "refused-stream", "unavailable", "cancelled", "503"),
                split.getRetry().getRetryOnList(), "Istio's conversion of an HTTPRoute retry");
        assertEquals(List.of(
                HeaderMutation.newBuilder().setOp(HeaderMutation.Op.SET).setName("x-mesh").setValue("ambient").build(),
                HeaderMutation.newBuilder().setOp(HeaderMutation.Op.REMOVE).setName("x-debug").build()),
                split.getRequestHeaderMutationsList());
        assertEquals(List.of(HeaderMutation.newBuilder().setOp(HeaderMutation.Op.ADD).setName("x-served-by")
                .setValue("waypoint").build()), split.getResponseHeaderMutationsList());
    }

    @Test
    void aTargetRefsPolicyBecomesAnL7Authorization() {
        MeshSnapshot s = translate("bookinfo.yaml", "policies.yaml").snapshot();
        assertNull(s.resources(ResourceTypes.AUTHORIZATION).get("shop/reviews-readers"), "not a ztunnel policy");
        L7Authorization l7 = get(s, ResourceTypes.L7_AUTHORIZATION, "shop/reviews-readers");
        assertEquals(Action.ALLOW, l7.getAction());
        assertEquals(List.of("Gateway/shop/waypoint", "Service/shop/reviews.shop.svc.cluster.local"),
                l7.getTargetsList());
        var rule = l7.getRules(0);
        assertEquals(List.of(exact("cluster.local/ns/shop/sa/bookinfo-productpage")),
                rule.getFrom(0).getPrincipalsList());
        assertEquals(List.of("GET"), rule.getTo(0).getMethodsList());
        assertEquals(List.of(StringMatch.newBuilder().setPrefix("/reviews/").build()), rule.getTo(0).getPathsList());
        assertEquals("request.headers[x-token]", rule.getWhen(0).getKey());
        assertEquals(List.of(exact("let-me-in")), rule.getWhen(0).getValuesList());
    }

    @Test
    void badResourcesAreReportedAndSkippedAndTheRestIsStillTranslated() {
        Translation t = translate("bookinfo.yaml", "policies.yaml", "bad.yaml");
        MeshSnapshot s = t.snapshot();
        Map<String, List<String>> byResource = t.problems().stream().collect(Collectors.groupingBy(Problem::resource,
                Collectors.mapping(Problem::reason, Collectors.toList())));
        t.problems().forEach(p -> System.out.println("problem: " + p));

        assertProblem(byResource, "AuthorizationPolicy/shop/unknown-action", "unknown action 'AUDITING'");
        assertProblem(byResource, "AuthorizationPolicy/shop/invalid-selector", "invalid label value");
        assertProblem(byResource, "AuthorizationPolicy/shop/missing-target", "does not exist");
        assertProblem(byResource, "AuthorizationPolicy/shop/unknown-field", "spec.rulez: unknown field");
        assertProblem(byResource, "AuthorizationPolicy/shop/named-port", "not a port number: 'http'");
        assertProblem(byResource, "AuthorizationPolicy/shop/l7-without-waypoint", "L7 fields need a waypoint");
        assertProblem(byResource, "HTTPRoute/shop/to-nowhere", "Service shop/ghost does not exist");
        assertProblem(byResource, "PeerAuthentication/shop/bad-mode", "unknown mode 'MUTUAL'");

        for (String skipped : List.of("unknown-action", "invalid-selector", "unknown-field")) {
            assertNull(s.resources(ResourceTypes.AUTHORIZATION).get("shop/" + skipped), skipped);
        }
        assertNull(s.resources(ResourceTypes.L7_AUTHORIZATION).get("shop/missing-target"));
        assertNull(s.resources(ResourceTypes.PEER_AUTHENTICATION).get("shop/bad-mode"));
        // Fail closed: the ALLOW rules that cannot be enforced never match; the others remain.
        Authorization namedPort = get(s, ResourceTypes.AUTHORIZATION, "shop/named-port");
        assertEquals(0, namedPort.getRulesCount());
        Authorization l7 = get(s, ResourceTypes.AUTHORIZATION, "shop/l7-without-waypoint");
        assertEquals(1, l7.getRulesCount());
        assertEquals(Match.newBuilder().addNamespaces(exact("shop")).build(), l7.getRules(0).getClauses(0).getMatches(0));

        // Everything else is as without the bad resources.
        Translation good = translate("bookinfo.yaml", "policies.yaml");
        for (String type : List.of(ResourceTypes.WORKLOAD, ResourceTypes.SERVICE, ResourceTypes.SERVICE_ROUTES)) {
            assertEquals(good.snapshot().resources(type), s.resources(type), type);
        }
        assertTrue(good.problems().isEmpty(), "the good fixtures translate cleanly: " + good.problems());
    }

    @Test
    void aDenyRuleWithPartsZtunnelCannotEnforceDeniesMoreBroadly() {
        var policy = Fixtures.objects("policies.yaml").stream()
                .filter(o -> o.getMetadata().getName().equals("deny-legacy")).findFirst().orElseThrow();
        GenericKubernetesResource g = (GenericKubernetesResource) policy;
        @SuppressWarnings("unchecked")
        Map<String, Object> spec = (Map<String, Object>) g.getAdditionalProperties().get("spec");
        spec.put("rules", List.of(Map.of("to", List.of(Map.of("operation", Map.of("methods", List.of("DELETE"),
                "ports", List.of("8080")))))));
        Translation t = TRANSLATOR.translate(MeshInput.builder().addAll(List.of(g)).build(), 1);
        Authorization deny = get(t.snapshot(), ResourceTypes.AUTHORIZATION, "shop/deny-legacy");
        assertEquals(Match.newBuilder().addDestinationPorts(8080).build(), deny.getRules(0).getClauses(0).getMatches(0),
                "the method is ignored: every request to 8080 is denied");
        assertTrue(t.problems().getFirst().reason().contains("denies more broadly"), t.problems().toString());
    }

    @Test
    void aTypicalWorkloadIsSmall() {
        MeshSnapshot s = translate("bookinfo.yaml").snapshot();
        Workload pp = get(s, ResourceTypes.WORKLOAD, SHOP + "productpage-v1-7d9f8c6b5-x2k4q");
        int size = pp.getSerializedSize();
        System.out.println("a typical workload (with a waypoint and one service) serialises to " + size + " bytes");
        assertTrue(size < 300, "workload is " + size + " bytes");
    }

    @Test
    void theConfiguredClusterAndTrustDomainAreUsed() {
        var custom = new MeshTranslator(new TranslatorConfig("east", "example.org", "corp.local", "mesh-root",
                "istio-waypoint"));
        MeshSnapshot s = custom.translate(Fixtures.input("bookinfo.yaml"), 1).snapshot();
        Workload pp = get(s, ResourceTypes.WORKLOAD, "east//Pod/shop/productpage-v1-7d9f8c6b5-x2k4q");
        assertEquals("example.org", pp.getTrustDomain());
        assertEquals("east", pp.getClusterId());
        assertEquals("waypoint.shop.svc.corp.local", pp.getWaypoint().getHostname().getHostname());
        assertTrue(s.resources(ResourceTypes.SERVICE).containsKey("shop/reviews.shop.svc.corp.local"));
    }

    @Test
    void theTranslationIsDeterministic() {
        MeshSnapshot a = translate("bookinfo.yaml", "policies.yaml", "endpoints.yaml").snapshot();
        MeshSnapshot b = translate("bookinfo.yaml", "policies.yaml", "endpoints.yaml").snapshot();
        for (String type : List.of(ResourceTypes.WORKLOAD, ResourceTypes.SERVICE, ResourceTypes.AUTHORIZATION,
                ResourceTypes.PEER_AUTHENTICATION, ResourceTypes.SERVICE_ROUTES, ResourceTypes.L7_AUTHORIZATION)) {
            assertEquals(a.resources(type).keySet(), b.resources(type).keySet());
            a.resources(type).forEach((k, v) -> assertEquals(v.version(), b.resources(type).get(k).version(), k));
        }
    }

    static void assertProblem(Map<String, List<String>> byResource, String resource, String reasonPart) {
        List<String> reasons = byResource.get(resource);
        assertNotNull(reasons, "no problem reported for " + resource + "; have " + byResource.keySet());
        assertTrue(reasons.stream().anyMatch(r -> r.contains(reasonPart)), resource + ": " + reasons);
    }
}
