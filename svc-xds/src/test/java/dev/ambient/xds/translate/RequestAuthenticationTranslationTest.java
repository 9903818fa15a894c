package dev.ambient.xds.translate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.TextFormat;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.l7.JwtRule;
import dev.ambient.proto.l7.L7Authentication;
import dev.ambient.xds.source.KubeYaml;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * RequestAuthentication reaches waypoints only, with every JWT rule field carried; a bad rule is
 * reported by field and left out (its issuer's tokens are then refused: fail closed), a bad policy
 * is reported and skipped.
 */
class RequestAuthenticationTranslationTest {

    private static final String JWKS = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k\","
            + "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";

    static Translation translate(String api, String spec) throws Exception {
        String yaml = """
                apiVersion: security.istio.io/%s
                kind: RequestAuthentication
                metadata: {name: jwt, namespace: shop}
                spec:
                %s
                """.formatted(api, spec.indent(2));
        MeshInput input = MeshInput.builder().addAll(Fixtures.objects("bookinfo.yaml"))
                .addAll(KubeYaml.parse(yaml, kind -> {
                })).build();
        return new MeshTranslator().translate(input, 1);
    }

    static L7Authentication policy(Translation t) {
        var e = t.snapshot().resources(ResourceTypes.L7_AUTHENTICATION).get("shop/jwt");
        return e == null ? null : (L7Authentication) e.resource();
    }

    static List<String> problems(Translation t) {
        return t.problems().stream().filter(p -> p.resource().equals("RequestAuthentication/shop/jwt"))
                .map(Problem::reason).toList();
    }

    @Test
    void everyFieldReachesTheWaypoint() throws Exception {
        Translation t = translate("v1", """
                targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
                jwtRules:
                - issuer: https://issuer.example
                  audiences: [shop, admin]
                  jwksUri: https://issuer.example/jwks.json
                  fromHeaders: [{name: X-Jwt, prefix: 'Token '}]
                  fromParams: [tok]
                  outputPayloadToHeader: X-Jwt-Payload
                  outputClaimToHeaders: [{header: x-user, claim: sub}]
                  forwardOriginalToken: true
                - issuer: inline
                  jwks: '%s'
                """.formatted(JWKS));
        L7Authentication p = policy(t);
        assertNotNull(p, t.problems().toString());
        assertEquals(List.of(), problems(t));
        assertEquals(List.of("Gateway/shop/waypoint"), p.getTargetsList());
        assertEquals(TextFormat.parse("""
                issuer: "https://issuer.example" audiences: "shop" audiences: "admin"
                jwks_uri: "https://issuer.example/jwks.json"
                from_headers { name: "x-jwt" prefix: "Token " } from_params: "tok"
                output_payload_to_header: "x-jwt-payload"
                output_claim_to_headers { header: "x-user" claim: "sub" } forward_original_token: true
                """, JwtRule.class), p.getJwtRules(0));
        assertEquals(JWKS, p.getJwtRules(1).getJwks());
    }

    @Test
    void v1beta1AndANamespaceWidePolicyReachTheNamespacesWaypoints() throws Exception {
        Translation t = translate("v1beta1", "jwtRules: [{issuer: i, jwksUri: 'http://keys.shop:8080/jwks'}]");
        assertEquals(List.of("Gateway/shop/waypoint"), policy(t).getTargetsList());
        Translation selected = translate("v1", """
                selector: {matchLabels: {gateway.networking.k8s.io/gateway-name: waypoint}}
                jwtRules: [{issuer: i, jwksUri: 'http://keys.shop:8080/jwks'}]
                """);
        assertEquals(List.of("Gateway/shop/waypoint"), policy(selected).getTargetsList());
        Translation app = translate("v1", """
                selector: {matchLabels: {app: reviews}}
                jwtRules: [{issuer: i, jwksUri: 'http://keys.shop:8080/jwks'}]
                """);
        assertEquals(List.of(), policy(app).getTargetsList());
        assertTrue(problems(app).getFirst().contains("selects no waypoint"), problems(app).toString());
    }

    static Arguments row(String rule, String problem) {
        return Arguments.of(rule, problem);
    }

    static Stream<Arguments> badRules() {
        return Stream.of(
                row("{jwksUri: 'https://k/j'}", "spec.jwtRules[0].issuer: required"),
                row("{issuer: i}", "exactly one of jwksUri and jwks is required (OpenID discovery"),
                row("{issuer: i, jwksUri: 'https://k/j', jwks: '{}'}", "exactly one of jwksUri and jwks"),
                row("{issuer: i, jwksUri: 'file:///etc/passwd'}", "jwksUri: expected an http or https URL"),
                row("{issuer: i, jwksUri: 'https://user:pw@k/j'}", "jwksUri: expected an http or https URL"),
                row("{issuer: i, jwks: 'not json'}", "jwks: not JSON"),
                row("{issuer: i, jwks: '{\"keys\": []}'}", "jwks: expected a JSON Web Key Set"),
                row("{issuer: i, jwks: '" + "x".repeat(70_000) + "'}", "jwks: larger than 65536 bytes"),
                row("{issuer: i, jwksUri: 'https://k/j', audiences: ['']}", "audiences: must not hold an empty string"),
                row("{issuer: i, jwksUri: 'https://k/j', fromHeaders: [{prefix: x}]}", "fromHeaders[0].name: required"),
                row("{issuer: i, jwksUri: 'https://k/j', fromHeaders: [{name: 'bad name'}]}", "not a valid header name"),
                row("{issuer: i, jwksUri: 'https://k/j', fromHeaders: [{name: a, suffix: b}]}",
                        "fromHeaders[0].suffix: unknown field"),
                row("{issuer: i, jwksUri: 'https://k/j', fromParams: ['']}", "fromParams: must not hold an empty name"),
                row("{issuer: i, jwksUri: 'https://k/j', outputPayloadToHeader: x-forwarded-client-cert}",
                        "outputPayloadToHeader: 'x-forwarded-client-cert' is a header the waypoint owns"),
                row("{issuer: i, jwksUri: 'https://k/j', outputClaimToHeaders: [{header: x-envoy-peer, claim: sub}]}",
                        "a header the waypoint owns"),
                row("{issuer: i, jwksUri: 'https://k/j', outputClaimToHeaders: [{header: x-sub}]}",
                        "outputClaimToHeaders[0].claim: required"),
                row("{issuer: i, jwksUri: 'https://k/j', forwardOriginalToken: 'yes'}",
                        "forwardOriginalToken: expected true or false"),
                row("{issuer: i, jwksUri: 'https://k/j', fromCookies: [session]}", "fromCookies: not supported"),
                row("{issuer: i, jwksUri: 'https://k/j', typo: 1}", "spec.jwtRules[0].typo: unknown field"));
    }

    @ParameterizedTest(name = "{1}")
    @MethodSource("badRules")
    void aBadRuleIsReportedByFieldAndLeftOut(String rule, String problem) throws Exception {
        Translation t = translate("v1", """
                targetRefs: [{kind: Gateway, name: waypoint}]
                jwtRules:
                - %s
                - {issuer: good, jwksUri: 'https://good/jwks'}
                """.formatted(rule));
        L7Authentication p = policy(t);
        assertNotNull(p, t.problems().toString());
        assertEquals(List.of("good"), p.getJwtRulesList().stream().map(JwtRule::getIssuer).toList());
        List<String> problems = problems(t);
        assertEquals(1, problems.size(), problems.toString());
        assertTrue(problems.getFirst().contains(problem), problems.getFirst());
        assertTrue(problems.getFirst().contains("rule left out"), problems.getFirst());
    }

    @Test
    void aBadPolicyIsSkipped() throws Exception {
        for (String spec : List.of("{targetRefs: [{kind: Gateway, name: nope}], jwtRules: []}",
                "{targetRefs: [{kind: Gateway, name: waypoint}], selector: {matchLabels: {a: b}}}",
                "{jwtRule: []}")) {
            Translation t = translate("v1", spec);
            assertNull(policy(t), spec);
            assertEquals(1, problems(t).size() >= 1 ? 1 : 0, spec + " " + problems(t));
        }
    }

    @Test
    void aServiceTargetIsItsHostname() throws Exception {
        Translation t = translate("v1", """
                targetRefs: [{kind: Service, name: reviews}]
                jwtRules: [{issuer: i, jwksUri: 'https://k/j'}]
                """);
        assertEquals(List.of("Service/shop/reviews.shop.svc.cluster.local"), policy(t).getTargetsList(),
                t.problems().toString());
    }

    @Test
    void requestPrincipalsReachTheWaypointAndFailClosedAtTheZtunnel() throws Exception {
        String yaml = """
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: l7, namespace: shop}
                spec:
                  targetRefs: [{kind: Gateway, name: waypoint}]
                  rules:
                  - from: [{source: {requestPrincipals: ['https://issuer/*'], notRequestPrincipals: ['*/banned']}}]
                ---
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: l4, namespace: shop}
                spec:
                  selector: {matchLabels: {app: reviews}}
                  rules:
                  - from: [{source: {requestPrincipals: ['*']}}]
                """;
        MeshInput input = MeshInput.builder().addAll(Fixtures.objects("bookinfo.yaml"))
                .addAll(KubeYaml.parse(yaml, kind -> {
                })).build();
        Translation t = new MeshTranslator().translate(input, 1);
        var l7 = (dev.ambient.proto.l7.L7Authorization) t.snapshot().resources(ResourceTypes.L7_AUTHORIZATION)
                .get("shop/l7").resource();
        assertEquals(TextFormat.parse("""
                from { request_principals { prefix: "https://issuer/" } not_request_principals { suffix: "/banned" } }
                """, dev.ambient.proto.l7.L7Rule.class), l7.getRules(0));
        var l4 = (dev.ambient.proto.workload.Authorization) t.snapshot().resources(ResourceTypes.AUTHORIZATION)
                .get("shop/l4").resource();
        assertEquals(0, l4.getRulesCount(), "an ALLOW rule on a request principal never matches at the ztunnel");
        assertTrue(t.problems().stream().anyMatch(p -> p.resource().equals("AuthorizationPolicy/shop/l4")
                && p.reason().contains("requestPrincipals: L7 fields need a waypoint")), t.problems().toString());
        assertTrue(t.problems().stream().noneMatch(p -> p.resource().equals("AuthorizationPolicy/shop/l7")),
                t.problems().toString());
    }
}
