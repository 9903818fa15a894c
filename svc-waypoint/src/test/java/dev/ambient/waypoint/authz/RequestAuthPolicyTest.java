package dev.ambient.waypoint.authz;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.L7Condition;
import dev.ambient.proto.l7.L7Rule;
import dev.ambient.proto.l7.L7Source;
import dev.ambient.proto.workload.Action;
import dev.ambient.proto.workload.StringMatch;
import dev.ambient.waypoint.authn.RequestAuth;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * requestPrincipals and the request.auth.* keys, with Istio's semantics: matched against what a
 * verified JWT says; a request without one has no principal; a TCP stream cannot answer them, so an
 * ALLOW rule with them matches no TCP stream and a DENY rule ignores them (denies more).
 */
class RequestAuthPolicyTest {

    static final String TARGET = "Gateway/demo/waypoint";
    static final RequestAuth ALICE;

    static {
        try {
            ALICE = new RequestAuth("https://issuer/alice", List.of("shop", "web"), "spa",
                    new ObjectMapper().readTree("{\"groups\": [\"admins\", \"users\"], \"realm\": {\"roles\": [\"reader\"]},"
                            + " \"level\": 3, \"team\": \"blue\"}"));
        } catch (Exception e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    static L7Authorizer.Request http(RequestAuth auth) {
        return new L7Authorizer.Request(L7AuthorizerTest.PRODUCTPAGE, L7AuthorizerTest.CLIENT_IP, L7AuthorizerTest.VIP,
                9080, new L7Authorizer.Http("GET", "/", "reviews", new DefaultHttpHeaders()), auth);
    }

    static final L7Authorizer.Request TCP = L7AuthorizerTest.tcp(L7AuthorizerTest.PRODUCTPAGE);

    static StringMatch exact(String s) {
        return StringMatch.newBuilder().setExact(s).build();
    }

    static L7Rule principals(StringMatch... m) {
        return L7Rule.newBuilder().addFrom(L7Source.newBuilder().addAllRequestPrincipals(List.of(m))).build();
    }

    static L7Rule notPrincipals(StringMatch... m) {
        return L7Rule.newBuilder().addFrom(L7Source.newBuilder().addAllNotRequestPrincipals(List.of(m))).build();
    }

    static L7Rule when(String key, StringMatch value, boolean not) {
        L7Condition.Builder c = L7Condition.newBuilder().setKey(key);
        if (not) {
            c.addNotValues(value);
        } else {
            c.addValues(value);
        }
        return L7Rule.newBuilder().addWhen(c).build();
    }

    static Arguments row(String name, Action action, L7Rule rule, L7Authorizer.Request r, boolean allowed) {
        return Arguments.of(name, action, rule, r, allowed);
    }

    static Stream<Arguments> cases() {
        StringMatch any = StringMatch.newBuilder().setPresence(true).build();
        StringMatch issuerPrefix = StringMatch.newBuilder().setPrefix("https://issuer/").build();
        StringMatch aliceSuffix = StringMatch.newBuilder().setSuffix("/alice").build();
        return Stream.of(
                row("ALLOW requestPrincipals * with a token", Action.ALLOW, principals(any), http(ALICE), true),
                row("ALLOW requestPrincipals * without a token", Action.ALLOW, principals(any), http(RequestAuth.NONE), false),
                row("ALLOW requestPrincipals prefix", Action.ALLOW, principals(issuerPrefix), http(ALICE), true),
                row("ALLOW requestPrincipals suffix", Action.ALLOW, principals(aliceSuffix), http(ALICE), true),
                row("ALLOW requestPrincipals other", Action.ALLOW, principals(exact("https://issuer/bob")), http(ALICE), false),
                row("DENY notRequestPrincipals * denies the anonymous", Action.DENY, notPrincipals(any),
                        http(RequestAuth.NONE), false),
                row("DENY notRequestPrincipals * lets a token through", Action.DENY, notPrincipals(any), http(ALICE), true),
                row("ALLOW requestPrincipals over TCP matches nothing", Action.ALLOW, principals(any), TCP, false),
                row("DENY requestPrincipals over TCP is ignored: denies", Action.DENY, principals(exact("x/y")), TCP, false),
                row("ALLOW principal key", Action.ALLOW, when("request.auth.principal", issuerPrefix, false), http(ALICE), true),
                row("ALLOW audiences: any of them", Action.ALLOW, when("request.auth.audiences", exact("web"), false),
                        http(ALICE), true),
                row("ALLOW presenter", Action.ALLOW, when("request.auth.presenter", exact("spa"), false), http(ALICE), true),
                row("ALLOW list claim: any element", Action.ALLOW, when("request.auth.claims[groups]", exact("admins"), false),
                        http(ALICE), true),
                row("ALLOW list claim: no element", Action.ALLOW, when("request.auth.claims[groups]", exact("root"), false),
                        http(ALICE), false),
                row("ALLOW nested claim", Action.ALLOW, when("request.auth.claims[realm][roles]", exact("reader"), false),
                        http(ALICE), true),
                row("ALLOW string claim prefix", Action.ALLOW, when("request.auth.claims[team]",
                        StringMatch.newBuilder().setPrefix("bl").build(), false), http(ALICE), true),
                row("ALLOW a number claim is no string", Action.ALLOW, when("request.auth.claims[level]", exact("3"), false),
                        http(ALICE), false),
                row("ALLOW claim without a token", Action.ALLOW, when("request.auth.claims[groups]", any, false),
                        http(RequestAuth.NONE), false),
                row("DENY notValues on a list claim", Action.DENY, when("request.auth.claims[groups]", exact("admins"), true),
                        http(ALICE), true),
                row("ALLOW claim key over TCP matches nothing", Action.ALLOW, when("request.auth.claims[groups]", any, false),
                        TCP, false),
                row("DENY claim key over TCP is ignored: denies", Action.DENY, when("request.auth.claims[groups]",
                        exact("nobody"), false), TCP, false),
                row("ALLOW a malformed claims key is unknown: matches nothing", Action.ALLOW,
                        when("request.auth.claims[a]b", any, false), http(ALICE), false));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void decides(String name, Action action, L7Rule rule, L7Authorizer.Request r, boolean allowed) {
        L7Authorization p = L7Authorization.newBuilder().setName("p").setNamespace("demo").setAction(action)
                .addTargets(TARGET).addRules(rule).build();
        assertEquals(allowed, new L7Authorizer("demo/waypoint").evaluate(List.of(p), null, r).allowed(), name);
    }
}
