package dev.ambient.xds.translate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.l7.TcpRoute;
import dev.ambient.proto.l7.WeightedBackend;
import java.util.List;
import org.junit.jupiter.api.Test;

/** TCPRoutes (v1alpha2, from tcproutes.yaml) into the tcp_routes of the waypoint's route tables. */
class TcpRouteTranslationTest {

    static WeightedBackend backend(String name, int weight) {
        return WeightedBackend.newBuilder().setService("shop/" + name + ".shop.svc.cluster.local").setPort(9080)
                .setWeight(weight).build();
    }

    static ServiceRoutes table(Translation t, String service) {
        var e = t.snapshot().resources(ResourceTypes.SERVICE_ROUTES).get("shop/" + service + ".shop.svc.cluster.local");
        return e == null ? null : (ServiceRoutes) e.resource();
    }

    static List<String> problems(Translation t, String route) {
        return t.problems().stream().filter(p -> p.resource().equals("TCPRoute/shop/" + route)).map(Problem::reason)
                .toList();
    }

    @Test
    void weightedBackendsOnTheParentPortAndProblemsPerField() {
        Translation t = new MeshTranslator().translate(Fixtures.input("bookinfo.yaml", "policies.yaml",
                "tcproutes.yaml"), 1);

        // On a Service parent and its port; a backend that does not exist is left out, reported.
        ServiceRoutes ratings = table(t, "ratings");
        assertEquals(List.of(TcpRoute.newBuilder().setName("shop/ratings-split").addPorts(9080)
                .addBackends(backend("reviews-v1", 80)).addBackends(backend("reviews-v2", 20)).build()),
                ratings.getTcpRoutesList(), "ratings has no waypoint: the Gateway parent does not reach it");
        assertEquals(0, ratings.getRoutesCount(), "no HTTP route: HTTP to ratings is not routed by this table");
        assertEquals(List.of("spec.parentRefs[0]: Service shop/ratings has no waypoint; the routes apply once it has one",
                "spec.rules[0].backendRefs[2]: Service shop/ghost does not exist; backend left out"),
                problems(t, "ratings-split"));

        // Shares the reviews table with its HTTPRoute; the waypoint parent covers every port.
        ServiceRoutes reviews = table(t, "reviews");
        assertEquals(2, reviews.getRoutesCount(), "the HTTPRoute's routes stay");
        assertEquals(List.of(TcpRoute.newBuilder().setName("shop/whole-waypoint").addBackends(backend("reviews-v2", 1))
                .build()), reviews.getTcpRoutesList(), "the bad routes attach nowhere");
        assertTrue(reviews.getSourcesList().containsAll(List.of("shop/reviews", "shop/whole-waypoint")));

        assertEquals(List.of("spec.rules: exactly one rule is supported, not 2"), problems(t, "two-rules"));
        assertEquals(List.of("spec.rules[0].matches: unknown field"), problems(t, "with-matches"));
    }
}
