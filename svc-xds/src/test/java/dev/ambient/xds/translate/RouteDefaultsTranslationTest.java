package dev.ambient.xds.translate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.l7.Mirror;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.workload.OutlierDetection;
import dev.ambient.proto.workload.Service;
import dev.ambient.xds.source.KubeYaml;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * What a waypoint gets when an HTTPRoute or DestinationRule says little, as Istio converts them:
 * retries (none written = no policy, the waypoint's Istio default; a {@code retry} stanza = Istio's
 * connection conditions plus its codes), {@code timeouts.backendRequest} (per try with a retry, the
 * whole request without), RequestMirror (percent, fraction, only within the route's namespace) and
 * outlier detection (only when a DestinationRule asks, with Istio's defaults for what it leaves out).
 */
class RouteDefaultsTranslationTest {

    static final String TABLE = "shop/reviews.shop.svc.cluster.local";
    /** A service of another namespace, behind the same waypoint. */
    static final String OTHER = """
            apiVersion: v1
            kind: Namespace
            metadata: {name: other}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: collector, namespace: other}
            spec:
              clusterIP: 10.96.9.9
              ports: [{name: http, port: 9080}]
            ---
            """;

    static Translation translate(String yaml) throws Exception {
        MeshInput input = MeshInput.builder().addAll(Fixtures.objects("bookinfo.yaml"))
                .addAll(KubeYaml.parse(OTHER + yaml, kind -> {
                })).build();
        return new MeshTranslator().translate(input, 1);
    }

    static String route(String rule) {
        return """
                apiVersion: gateway.networking.k8s.io/v1
                kind: HTTPRoute
                metadata: {name: r, namespace: shop}
                spec:
                  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
                  rules:
                  - backendRefs: [{name: reviews-v1, port: 9080}]
                %s
                """.formatted(rule.indent(4).stripTrailing());
    }

    static Route only(Translation t) {
        var entry = t.snapshot().resources(ResourceTypes.SERVICE_ROUTES).get(TABLE);
        assertTrue(entry != null, "no table; problems " + t.problems());
        return ((ServiceRoutes) entry.resource()).getRoutes(0);
    }

    static List<String> problems(Translation t) {
        return t.problems().stream().map(p -> p.resource() + ": " + p.reason()).toList();
    }

    @Test
    void aRuleWithoutRetryCarriesNoPolicySoTheWaypointAppliesIstiosDefault() throws Exception {
        Route r = only(translate(route("")));
        assertFalse(r.hasRetry());
        assertEquals(0, r.getTimeoutMs(), "Istio: no route timeout unless one is written");
    }

    @Test
    void aRetryStanzaBecomesIstiosConnectionConditionsPlusItsCodes() throws Exception {
        Route r = only(translate(route("retry: {codes: [500, 502]}")));
        assertEquals(2, r.getRetry().getAttempts(), "attempts default to 2, as Istio");
        assertEquals(List.of("connect-failure", "refused-stream", "unavailable", "cancelled", "500", "502"),
                r.getRetry().getRetryOnList());
        Route none = only(translate(route("retry: {attempts: 0, codes: [503]}")));
        assertEquals(0, none.getRetry().getAttempts());
        assertEquals(List.of(), none.getRetry().getRetryOnList(), "attempts 0 turns retries off");
    }

    @Test
    void backendRequestIsPerTryWithARetryAndTheWholeRequestWithout() throws Exception {
        Route perTry = only(translate(route("timeouts: {request: 10s, backendRequest: 2s}\nretry: {attempts: 3}")));
        assertEquals(10_000, perTry.getTimeoutMs());
        assertEquals(2_000, perTry.getRetry().getPerTryTimeoutMs());
        assertEquals(3, perTry.getRetry().getAttempts());
        Route whole = only(translate(route("timeouts: {backendRequest: 2s}")));
        assertEquals(2_000, whole.getTimeoutMs());
        assertFalse(whole.hasRetry(), "no retry stanza: the waypoint's default policy, without a per-try timeout");
    }

    @Test
    void requestMirrorsWithPercentAndFraction() throws Exception {
        Translation t = translate(route("""
                filters:
                - type: RequestMirror
                  requestMirror: {backendRef: {name: reviews-v2, port: 9080}}
                - type: RequestMirror
                  requestMirror: {backendRef: {name: productpage, port: 9080}, fraction: {numerator: 1, denominator: 4}}
                - type: RequestMirror
                  requestMirror: {backendRef: {name: reviews-v1, port: 9080}, percent: 10}"""));
        assertEquals(List.of(), problems(t));
        assertEquals(List.of(
                Mirror.newBuilder().setService("shop/reviews-v2.shop.svc.cluster.local").setPort(9080).setPercent(100)
                        .build(),
                Mirror.newBuilder().setService("shop/productpage.shop.svc.cluster.local").setPort(9080).setPercent(25)
                        .build(),
                Mirror.newBuilder().setService("shop/reviews-v1.shop.svc.cluster.local").setPort(9080).setPercent(10)
                        .build()), only(t).getMirrorsList());
    }

    @Test
    void badMirrorsAreReportedByField() throws Exception {
        for (String[] c : new String[][] {
                {"{backendRef: {name: reviews-v2, port: 9080}, percent: 101}", "requestMirror.percent: must be 0..100"},
                {"{backendRef: {name: reviews-v2, port: 9080}, percent: 5, fraction: {numerator: 1}}",
                        "percent and fraction cannot be used together"},
                {"{backendRef: {name: reviews-v2, port: 9080}, fraction: {numerator: 3, denominator: 2}}",
                        "needs 0 <= numerator <= denominator"},
                {"{percent: 5}", "requestMirror.backendRef: required"},
                {"{backendRef: {name: reviews-v2, port: 9080, weight: 2}}", "backendRef.weight: unknown field"}}) {
            Translation t = translate(route("filters:\n- type: RequestMirror\n  requestMirror: " + c[0]));
            assertTrue(problems(t).stream().anyMatch(p -> p.contains(c[1])), c[0] + ": " + problems(t));
        }
    }

    /**
     * A mirror copies requests, credentials and bodies included: a route may not send them to
     * another namespace (no ReferenceGrant here), nor copy another namespace's traffic by
     * attaching to its service. Either mirror is left out and reported; the route itself applies.
     */
    @Test
    void aMirrorNeverCopiesTrafficAcrossNamespaces() throws Exception {
        Translation out = translate(route("""
                filters:
                - type: RequestMirror
                  requestMirror: {backendRef: {name: collector, namespace: other, port: 9080}}"""));
        assertEquals(0, only(out).getMirrorsCount());
        assertTrue(problems(out).stream().anyMatch(p -> p.startsWith("HTTPRoute/shop/r: ")
                && p.contains("a mirror to namespace other would copy this route's requests out of shop")),
                problems(out).toString());

        Translation in = translate("""
                apiVersion: gateway.networking.k8s.io/v1
                kind: HTTPRoute
                metadata: {name: spy, namespace: other}
                spec:
                  parentRefs: [{group: "", kind: Service, name: reviews, namespace: shop, port: 9080}]
                  rules:
                  - backendRefs: [{name: reviews, namespace: shop, port: 9080}]
                    filters:
                    - type: RequestMirror
                      requestMirror: {backendRef: {name: collector, port: 9080}}
                """);
        assertEquals(0, only(in).getMirrorsCount(), "reviews' traffic is not copied to other/collector");
        assertTrue(problems(in).stream().anyMatch(p -> p.startsWith("HTTPRoute/other/spy: ")
                && p.contains("RequestMirror: not applied to shop/reviews.shop.svc.cluster.local")),
                problems(in).toString());
    }

    static String rule(String trafficPolicy) {
        return """
                apiVersion: networking.istio.io/v1
                kind: DestinationRule
                metadata: {name: reviews-od, namespace: shop}
                spec:
                  host: reviews
                  trafficPolicy: %s
                """.formatted(trafficPolicy);
    }

    static Service reviews(Translation t) {
        return (Service) t.snapshot().resources(ResourceTypes.SERVICE).values().stream().map(e -> e.resource())
                .filter(m -> m instanceof Service s && s.getHostname().equals("reviews.shop.svc.cluster.local"))
                .findFirst().orElseThrow();
    }

    @Test
    void outlierDetectionOnlyWhenADestinationRuleAsksWithIstiosDefaults() throws Exception {
        assertFalse(reviews(translate("")).hasOutlierDetection(), "no rule: no ejection, as Istio");
        Translation t = translate(rule("{outlierDetection: {consecutiveGatewayErrors: 3}}"));
        assertEquals(List.of(), problems(t));
        assertEquals(OutlierDetection.newBuilder().setConsecutive5XxErrors(5).setConsecutiveGatewayErrors(3)
                .setIntervalMs(10_000).setBaseEjectionMs(30_000).setMaxEjectionPercent(10).setSource("shop/reviews-od")
                .build(), reviews(t).getOutlierDetection());
        Translation all = translate(rule("{outlierDetection: {consecutive5xxErrors: 0, interval: 1s,"
                + " baseEjectionTime: 2m, maxEjectionPercent: 50, minHealthPercent: 20}}"));
        assertEquals(OutlierDetection.newBuilder().setConsecutive5XxErrors(0).setIntervalMs(1_000)
                .setBaseEjectionMs(120_000).setMaxEjectionPercent(50).setSource("shop/reviews-od").build(),
                reviews(all).getOutlierDetection());
        assertTrue(problems(all).stream().anyMatch(p -> p.contains("outlierDetection.minHealthPercent: not supported")),
                problems(all).toString());
        Translation bad = translate(rule("{outlierDetection: {maxEjectionPercent: 150}}"));
        assertFalse(reviews(bad).hasOutlierDetection());
        assertTrue(problems(bad).stream().anyMatch(p -> p.contains("maxEjectionPercent: must be 0..100")),
                problems(bad).toString());
    }
}
