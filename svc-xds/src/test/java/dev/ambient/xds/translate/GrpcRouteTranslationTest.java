package dev.ambient.xds.translate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.TextFormat;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.xds.source.KubeYaml;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * GRPCRoute (v1) rules into the waypoint's route model, one rule per row: the match on the gRPC
 * path ({@code /service/method}) and headers, the weighted backends and header filters, or the
 * problem naming the field (the route then skipped).
 */
class GrpcRouteTranslationTest {

    static Arguments ok(String name, String rule, String expected) {
        return Arguments.of(name, rule, expected, null);
    }

    static Arguments bad(String name, String rule, String problem) {
        return Arguments.of(name, rule, null, problem);
    }

    static Stream<Arguments> cases() {
        String backends = "backendRefs: [{name: reviews-v1, port: 9080, weight: 3}, {name: reviews-v2, port: 9080}]";
        String weighted = "backends { service: 'shop/reviews-v1.shop.svc.cluster.local' port: 9080 weight: 3 }"
                + " backends { service: 'shop/reviews-v2.shop.svc.cluster.local' port: 9080 weight: 1 }";
        return Stream.of(
                ok("service and method exact", "matches: [{method: {service: helloworld.Greeter, method: SayHello}}]\n"
                        + backends, "matches { path { kind: EXACT value: '/helloworld.Greeter/SayHello' } } " + weighted),
                ok("a service alone is its path prefix", "matches: [{method: {service: helloworld.Greeter}}]\n" + backends,
                        "matches { path { value: '/helloworld.Greeter' } } " + weighted),
                ok("a method alone in any service", "matches: [{method: {method: SayHello}}]\n" + backends,
                        "matches { path { kind: REGULAR_EXPRESSION value: '/[^/]+/SayHello' } } " + weighted),
                ok("regular expressions", "matches: [{method: {type: RegularExpression, service: 'helloworld\\..*',"
                        + " method: 'Say.*'}}]\n" + backends,
                        "matches { path { kind: REGULAR_EXPRESSION value: '/(helloworld\\\\..*)/(Say.*)' } } " + weighted),
                ok("headers and header filters",
                        "matches: [{headers: [{name: X-Tenant, value: gold}]}]\nfilters: [{type: RequestHeaderModifier,"
                                + " requestHeaderModifier: {set: [{name: x-grpc, value: routed}]}}]\n" + backends,
                        "matches { path { value: '/' } headers { name: 'x-tenant' value: 'gold' } }"
                                + " request_header_mutations { name: 'x-grpc' value: 'routed' } " + weighted),
                bad("neither service nor method", "matches: [{method: {type: Exact}}]\n" + backends,
                        "spec.rules[0].matches[0].method: service or method is required"),
                bad("a service name with a slash", "matches: [{method: {service: 'a/b', method: M}}]\n" + backends,
                        "spec.rules[0].matches[0].method.service: 'a/b' is not a gRPC service name"),
                bad("a bad regular expression", "matches: [{method: {type: RegularExpression, method: '('}}]\n"
                        + backends, "spec.rules[0].matches[0].method.method: not a regular expression"),
                bad("an unknown method match type", "matches: [{method: {type: Prefix, service: s}}]\n" + backends,
                        "spec.rules[0].matches[0].method.type: unknown type 'Prefix'"),
                bad("HTTP's path match is no GRPCRoute field", "matches: [{path: {value: /}}]\n" + backends,
                        "spec.rules[0].matches[0].path: unknown field"),
                bad("no redirects for gRPC", "filters: [{type: RequestRedirect, requestRedirect: {hostname: a.b}}]\n"
                        + backends, "spec.rules[0].filters[0].type: RequestRedirect is not a GRPCRoute filter"),
                bad("HTTPRoute's timeouts are no GRPCRoute field", "timeouts: {request: 1s}\n" + backends,
                        "spec.rules[0].timeouts: unknown field"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void grpcRulesBecomeRoutesOnTheGrpcPath(String name, String rule, String expected, String problem)
            throws Exception {
        String yaml = """
                apiVersion: gateway.networking.k8s.io/v1
                kind: GRPCRoute
                metadata: {name: g, namespace: shop}
                spec:
                  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
                  rules:
                  - %s
                """.formatted(rule.indent(4).strip());
        MeshInput input = MeshInput.builder().addAll(Fixtures.objects("bookinfo.yaml"))
                .addAll(KubeYaml.parse(yaml, kind -> {
                })).build();
        Translation t = new MeshTranslator().translate(input, 1);
        List<Problem> problems = t.problems().stream().filter(p -> p.resource().equals("GRPCRoute/shop/g")).toList();
        var entry = t.snapshot().resources(ResourceTypes.SERVICE_ROUTES).get("shop/reviews.shop.svc.cluster.local");
        if (problem != null) {
            assertEquals(1, problems.size(), problems.toString());
            assertTrue(problems.getFirst().reason().contains(problem), problems.getFirst().reason());
            assertNull(entry, "a route with a bad field is skipped");
            return;
        }
        assertTrue(problems.isEmpty(), "no problem expected: " + problems);
        assertNotNull(entry);
        Route route = ((ServiceRoutes) entry.resource()).getRoutes(0);
        assertEquals(TextFormat.parse(expected, Route.class), route.toBuilder().clearName().build(), name);
    }
}
