package dev.ambient.waypoint.authz;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.L7Condition;
import dev.ambient.proto.l7.L7Operation;
import dev.ambient.proto.l7.L7Rule;
import dev.ambient.proto.l7.L7Source;
import dev.ambient.proto.workload.Action;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.StringMatch;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.HttpHeaders;
import java.net.InetAddress;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Istio's L7 authorization semantics: targets, DENY before ALLOW, ALLOW must match when present. */
class L7AuthorizerTest {

    static final Service REVIEWS = Service.newBuilder().setName("reviews").setNamespace("demo")
            .setHostname("reviews.demo.svc.cluster.local").build();
    static final SpiffeId PRODUCTPAGE = new SpiffeId("cluster.local", "demo", "productpage");
    static final SpiffeId OUTSIDER = new SpiffeId("cluster.local", "legacy", "outsider");
    final L7Authorizer authorizer = new L7Authorizer("demo/waypoint");

    static L7Authorizer.Request request(SpiffeId peer, String method, String path, HttpHeaders headers) {
        return new L7Authorizer.Request(peer, InetAddress.getLoopbackAddress(), method, path, "reviews", 9080, headers);
    }

    static StringMatch exact(String s) {
        return StringMatch.newBuilder().setExact(s).build();
    }

    static L7Authorization policy(String name, Action action, String target, L7Rule rule) {
        return L7Authorization.newBuilder().setName(name).setNamespace("demo").setAction(action).addTargets(target)
                .addRules(rule).build();
    }

    @Test
    void allowByPrincipalAndMethodDeniesEverythingElse() {
        var allow = policy("allow-pp", Action.ALLOW, "Service/demo/reviews.demo.svc.cluster.local",
                L7Rule.newBuilder().addFrom(L7Source.newBuilder().addPrincipals(exact(PRODUCTPAGE.principal())))
                        .addTo(L7Operation.newBuilder().addMethods("GET")).build());
        HttpHeaders h = new DefaultHttpHeaders();
        assertTrue(authorizer.evaluate(List.of(allow), REVIEWS, request(PRODUCTPAGE, "GET", "/", h)).allowed());
        assertFalse(authorizer.evaluate(List.of(allow), REVIEWS, request(PRODUCTPAGE, "POST", "/", h)).allowed());
        assertFalse(authorizer.evaluate(List.of(allow), REVIEWS, request(OUTSIDER, "GET", "/", h)).allowed());
    }

    @Test
    void denyIsEvaluatedBeforeAllow() {
        var allowAll = policy("allow-all", Action.ALLOW, "Gateway/demo/waypoint", L7Rule.getDefaultInstance());
        var denyLegacy = policy("deny-legacy", Action.DENY, "Gateway/demo/waypoint",
                L7Rule.newBuilder().addFrom(L7Source.newBuilder().addNamespaces(exact("legacy"))).build());
        HttpHeaders h = new DefaultHttpHeaders();
        assertTrue(authorizer.evaluate(List.of(allowAll, denyLegacy), REVIEWS, request(PRODUCTPAGE, "GET", "/", h))
                .allowed());
        var d = authorizer.evaluate(List.of(allowAll, denyLegacy), REVIEWS, request(OUTSIDER, "GET", "/", h));
        assertFalse(d.allowed());
        assertTrue(d.reason().contains("deny-legacy"), d.reason());
    }

    @Test
    void policiesForOtherTargetsDoNotApply() {
        var denyAll = policy("deny-all", Action.DENY, "Gateway/other/waypoint", L7Rule.getDefaultInstance());
        assertTrue(authorizer.evaluate(List.of(denyAll), REVIEWS, request(PRODUCTPAGE, "GET", "/",
                new DefaultHttpHeaders())).allowed());
    }

    @Test
    void pathsNotPathsAndHeaderConditions() {
        var deny = policy("deny", Action.DENY, "Gateway/demo/waypoint", L7Rule.newBuilder()
                .addTo(L7Operation.newBuilder().addPaths(StringMatch.newBuilder().setPrefix("/api/"))
                        .addNotPaths(exact("/api/health")))
                .addWhen(L7Condition.newBuilder().setKey("request.headers[x-token]").addNotValues(exact("secret")))
                .build());
        HttpHeaders none = new DefaultHttpHeaders();
        HttpHeaders token = new DefaultHttpHeaders().add("x-token", "secret");
        assertFalse(authorizer.evaluate(List.of(deny), REVIEWS, request(PRODUCTPAGE, "GET", "/api/x", none)).allowed());
        assertTrue(authorizer.evaluate(List.of(deny), REVIEWS, request(PRODUCTPAGE, "GET", "/api/x", token)).allowed());
        assertTrue(authorizer.evaluate(List.of(deny), REVIEWS, request(PRODUCTPAGE, "GET", "/api/health", none))
                .allowed());
        assertTrue(authorizer.evaluate(List.of(deny), REVIEWS, request(PRODUCTPAGE, "GET", "/web", none)).allowed());
    }
}
