package dev.ambient.waypoint.route;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.proto.l7.PathMatch;
import dev.ambient.proto.l7.QueryParamMatch;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.RouteMatch;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.l7.WeightedBackend;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Gateway API match semantics on a route table. */
class RouteTableTest {

    static PathMatch prefix(String p) {
        return PathMatch.newBuilder().setKind(PathMatch.Kind.PREFIX).setValue(p).build();
    }

    @Test
    void prefixMatchesWholePathElements() {
        assertTrue(RouteTable.pathMatches(prefix("/foo"), "/foo"));
        assertTrue(RouteTable.pathMatches(prefix("/foo"), "/foo/bar"));
        assertTrue(RouteTable.pathMatches(prefix("/foo/"), "/foo/bar"));
        assertFalse(RouteTable.pathMatches(prefix("/foo"), "/foobar"));
        assertTrue(RouteTable.pathMatches(prefix("/"), "/anything"));
    }

    @Test
    void firstHoldingMatchWinsAndQueryParametersCount() {
        ServiceRoutes t = ServiceRoutes.newBuilder()
                .addRoutes(Route.newBuilder().setName("q").addMatches(RouteMatch.newBuilder()
                        .addQueryParams(QueryParamMatch.newBuilder().setName("v").setValue("2"))))
                .addRoutes(Route.newBuilder().setName("exact").addMatches(RouteMatch.newBuilder()
                        .setPath(PathMatch.newBuilder().setKind(PathMatch.Kind.EXACT).setValue("/a"))))
                .build();
        var h = new DefaultHttpHeaders();
        assertEquals("q", RouteTable.match(t, RouteTable.Request.of("GET", "/a?v=2", h)).orElseThrow().getName());
        assertEquals("exact", RouteTable.match(t, RouteTable.Request.of("GET", "/a?v=3", h)).orElseThrow().getName());
        assertTrue(RouteTable.match(t, RouteTable.Request.of("GET", "/b", h)).isEmpty());
    }

    @Test
    void weightZeroBackendsGetNothing() {
        var a = WeightedBackend.newBuilder().setService("ns/a").setWeight(0).build();
        var b = WeightedBackend.newBuilder().setService("ns/b").setWeight(1).build();
        for (int i = 0; i < 100; i++) {
            assertEquals("ns/b", RouteTable.pickBackend(List.of(a, b)).orElseThrow().getService());
        }
        assertTrue(RouteTable.pickBackend(List.of(a)).isEmpty());
        assertFalse(RouteTable.coversPort(ServiceRoutes.newBuilder().addPorts(80).build(), 81));
        assertTrue(RouteTable.coversPort(ServiceRoutes.getDefaultInstance(), 81));
    }
}
