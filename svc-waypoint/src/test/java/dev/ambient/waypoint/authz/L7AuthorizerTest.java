package dev.ambient.waypoint.authz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.L7Condition;
import dev.ambient.proto.l7.L7Operation;
import dev.ambient.proto.l7.L7Rule;
import dev.ambient.proto.l7.L7Source;
import dev.ambient.proto.workload.Action;
import dev.ambient.proto.workload.Cidr;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.StringMatch;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.HttpHeaders;
import java.net.InetAddress;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Istio's L7 authorization semantics: targets, DENY before ALLOW, ALLOW must match when present;
 * and failing closed on what a request cannot answer (HTTP fields of a TCP stream, condition keys
 * the waypoint does not evaluate): a DENY rule ignores them (denies more), an ALLOW rule with them
 * matches nothing.
 */
class L7AuthorizerTest {

    static final Service REVIEWS = Service.newBuilder().setName("reviews").setNamespace("demo")
            .setHostname("reviews.demo.svc.cluster.local").build();
    static final SpiffeId PRODUCTPAGE = new SpiffeId("cluster.local", "demo", "productpage");
    static final SpiffeId OUTSIDER = new SpiffeId("cluster.local", "legacy", "outsider");
    static final InetAddress CLIENT_IP = InetAddress.ofLiteral("10.44.1.10");
    static final InetAddress VIP = InetAddress.ofLiteral("10.96.0.10");
    final L7Authorizer authorizer = new L7Authorizer("demo/waypoint");

    static L7Authorizer.Request request(SpiffeId peer, String method, String path, HttpHeaders headers) {
        return new L7Authorizer.Request(peer, CLIENT_IP, VIP, 9080,
                new L7Authorizer.Http(method, path, "reviews", headers));
    }

    static L7Authorizer.Request tcp(SpiffeId peer) {
        return new L7Authorizer.Request(peer, CLIENT_IP, VIP, 9080, null);
    }

    static StringMatch exact(String s) {
        return StringMatch.newBuilder().setExact(s).build();
    }

    static Cidr cidr(String ip, int length) {
        return Cidr.newBuilder().setAddress(ByteString.copyFrom(InetAddress.ofLiteral(ip).getAddress()))
                .setLength(length).build();
    }

    static L7Authorization policy(String name, Action action, String target, L7Rule rule) {
        return L7Authorization.newBuilder().setName(name).setNamespace("demo").setAction(action).addTargets(target)
                .addRules(rule).build();
    }

    static L7Condition.Builder when(String key) {
        return L7Condition.newBuilder().setKey(key);
    }

    static final L7Authorizer.Request GET_ADMIN = request(PRODUCTPAGE, "GET", "/admin",
            new DefaultHttpHeaders().add("x-token", "a").add("x-token", "b"));
    static final L7Authorizer.Request TCP = tcp(PRODUCTPAGE);
    static final L7Rule TO_ADMIN = L7Rule.newBuilder().addTo(L7Operation.newBuilder()
            .addPaths(StringMatch.newBuilder().setPrefix("/admin"))).build();

    static Arguments row(String name, Action action, L7Rule rule, L7Authorizer.Request request, boolean allowed) {
        return Arguments.of(name, action, rule, request, allowed);
    }

    static Stream<Arguments> table() {
        return Stream.of(
                // HTTP rules and a TCP stream: DENY ignores the HTTP fields (denies the stream), ALLOW drops the rule.
                row("DENY paths, HTTP request to the path", Action.DENY, TO_ADMIN, GET_ADMIN, false),
                row("DENY paths, HTTP request elsewhere", Action.DENY, TO_ADMIN,
                        request(PRODUCTPAGE, "GET", "/public", new DefaultHttpHeaders()), true),
                row("DENY paths, TCP stream", Action.DENY, TO_ADMIN, TCP, false),
                row("ALLOW paths, TCP stream", Action.ALLOW, TO_ADMIN, TCP, false),
                row("ALLOW methods only, TCP stream", Action.ALLOW, L7Rule.newBuilder()
                        .addTo(L7Operation.newBuilder().addMethods("GET")).build(), TCP, false),
                row("ALLOW principal, TCP stream", Action.ALLOW, L7Rule.newBuilder()
                        .addFrom(L7Source.newBuilder().addPrincipals(exact(PRODUCTPAGE.principal()))).build(), TCP, true),
                row("ALLOW port, TCP stream", Action.ALLOW, L7Rule.newBuilder()
                        .addTo(L7Operation.newBuilder().addPorts(9080)).build(), TCP, true),
                row("ALLOW port and path, TCP stream", Action.ALLOW, L7Rule.newBuilder()
                        .addTo(L7Operation.newBuilder().addPorts(9080).addPaths(exact("/x"))).build(), TCP, false),
                row("DENY other port and path, TCP stream", Action.DENY, L7Rule.newBuilder()
                        .addTo(L7Operation.newBuilder().addPorts(1234).addPaths(exact("/x"))).build(), TCP, true),
                row("DENY header condition, TCP stream", Action.DENY, L7Rule.newBuilder()
                        .addWhen(when("request.headers[x-token]").addValues(exact("a"))).build(), TCP, false),
                row("ALLOW header condition, TCP stream", Action.ALLOW, L7Rule.newBuilder()
                        .addWhen(when("request.headers[x-token]").addNotValues(exact("z"))).build(), TCP, false),
                // Keys the waypoint does not evaluate.
                row("DENY unknown key", Action.DENY, L7Rule.newBuilder()
                        .addWhen(when("connection.sni").addValues(exact("x"))).build(), GET_ADMIN, false),
                row("ALLOW unknown key", Action.ALLOW, L7Rule.newBuilder()
                        .addWhen(when("connection.sni").addNotValues(exact("x"))).build(), GET_ADMIN, false),
                // A JWT key the waypoint does not know (the known ones: RequestAuthPolicyTest).
                row("DENY unknown JWT key", Action.DENY, L7Rule.newBuilder()
                        .addWhen(when("request.auth.raw").addValues(exact("x"))).build(), GET_ADMIN, false),
                row("DENY empty header name", Action.DENY, L7Rule.newBuilder()
                        .addWhen(when("request.headers[]").addValues(exact("x"))).build(), GET_ADMIN, false),
                row("DENY unknown key, other path", Action.DENY, TO_ADMIN.toBuilder()
                        .addWhen(when("source.user").addValues(exact("x"))).build(),
                        request(PRODUCTPAGE, "GET", "/public", new DefaultHttpHeaders()), true),
                // Address conditions compare addresses.
                row("DENY source.ip in block", Action.DENY, L7Rule.newBuilder()
                        .addWhen(when("source.ip").addIpBlocks(cidr("10.44.0.0", 16))).build(), GET_ADMIN, false),
                row("DENY source.ip elsewhere", Action.DENY, L7Rule.newBuilder()
                        .addWhen(when("source.ip").addIpBlocks(cidr("10.45.0.0", 16))).build(), GET_ADMIN, true),
                row("DENY remote.ip is the source", Action.DENY, L7Rule.newBuilder()
                        .addWhen(when("remote.ip").addIpBlocks(cidr("10.44.1.10", 32))).build(), TCP, false),
                row("ALLOW destination.ip not the VIP", Action.ALLOW, L7Rule.newBuilder()
                        .addWhen(when("destination.ip").addNotIpBlocks(cidr("10.96.0.10", 32))).build(), TCP, false),
                row("ALLOW destination.ip the VIP", Action.ALLOW, L7Rule.newBuilder()
                        .addWhen(when("destination.ip").addIpBlocks(cidr("10.96.0.0", 12))).build(), TCP, true),
                row("DENY source.ip as a string (not understood)", Action.DENY, L7Rule.newBuilder()
                        .addWhen(when("source.ip").addValues(exact("1.2.3.4"))).build(), GET_ADMIN, false),
                row("ALLOW source.ip as a string (not understood)", Action.ALLOW, L7Rule.newBuilder()
                        .addWhen(when("source.ip").addValues(exact("10.44.1.10"))).build(), GET_ADMIN, false),
                // What it evaluates, it evaluates.
                row("DENY repeated header joined", Action.DENY, L7Rule.newBuilder()
                        .addWhen(when("request.headers[X-Token]").addValues(exact("a,b"))).build(), GET_ADMIN, false),
                row("ALLOW destination.port", Action.ALLOW, L7Rule.newBuilder()
                        .addWhen(when("destination.port").addValues(exact("9080"))).build(), TCP, true),
                row("ALLOW namespace", Action.ALLOW, L7Rule.newBuilder()
                        .addWhen(when("source.namespace").addValues(exact("legacy"))).build(), GET_ADMIN, false));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("table")
    void oneRule(String name, Action action, L7Rule rule, L7Authorizer.Request request, boolean allowed) {
        var d = authorizer.evaluate(List.of(policy("p", action, "Gateway/demo/waypoint", rule)), REVIEWS, request);
        assertEquals(allowed, d.allowed(), name + ": " + d.reason());
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
        assertTrue(authorizer.evaluate(List.of(denyAll), REVIEWS, TCP).allowed());
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

    /**
     * CUSTOM is asked first and only for what its rules match; it is neither an ALLOW (it does not
     * make other requests need a match) nor judged again by evaluate; a TCP stream its rules match
     * is denied, since no authorizer judges bytes.
     */
    @org.junit.jupiter.api.Test
    void customIsFoundForMatchingRequestsAndDeniesWhatItCannotAsk() {
        L7Authorization custom = policy("ext", Action.CUSTOM, "Gateway/demo/waypoint", TO_ADMIN);
        List<L7Authorization> policies = List.of(custom);
        org.junit.jupiter.api.Assertions.assertEquals(java.util.Optional.of(custom),
                authorizer.customPolicy(policies, REVIEWS, GET_ADMIN));
        L7Authorizer.Request getOther = request(PRODUCTPAGE, "GET", "/other", new DefaultHttpHeaders());
        org.junit.jupiter.api.Assertions.assertTrue(authorizer.customPolicy(policies, REVIEWS, getOther).isEmpty());
        org.junit.jupiter.api.Assertions.assertTrue(authorizer.evaluate(policies, REVIEWS, getOther).allowed(),
                "CUSTOM is no ALLOW");
        org.junit.jupiter.api.Assertions.assertTrue(authorizer.evaluate(policies, REVIEWS, GET_ADMIN).allowed(),
                "the authorizer already decided");
        org.junit.jupiter.api.Assertions.assertFalse(authorizer.evaluate(policies, REVIEWS, TCP).allowed(),
                "a path rule cannot be answered by TCP: it matches (as DENY) and CUSTOM cannot ask: denied");
        org.junit.jupiter.api.Assertions.assertTrue(authorizer.customPolicy(
                List.of(policy("elsewhere", Action.CUSTOM, "Gateway/demo/other", TO_ADMIN)), REVIEWS, GET_ADMIN)
                .isEmpty(), "another waypoint's policy");
    }
}
