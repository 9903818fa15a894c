package dev.ambient.waypoint.authn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.proto.l7.JwtRule;
import dev.ambient.waypoint.JwtMint;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Tokens minted by python3-jwt (not our code) through {@link JwtVerifier}: each algorithm verifies,
 * each way a token can be wrong is refused with Envoy's status.
 */
class JwtVerifierTest {

    static final String ISSUER = "https://issuer.example";
    static final JwtRule RULE = JwtRule.newBuilder().setIssuer(ISSUER).addAudiences("shop").setJwksUri("https://k/j")
            .build();
    static final JwtVerifier VERIFIER = new JwtVerifier(8192, 60);
    static JwtMint.Minted minted;
    static JwkSet keys;

    static String token(String kid, String alg, String claims, String extra) {
        return "{\"kid\": \"" + kid + "\", \"alg\": \"" + alg + "\", \"claims\": " + claims
                + (extra.isEmpty() ? "" : ", " + extra) + "}";
    }

    static final String GOOD = "{\"iss\": \"" + ISSUER + "\", \"sub\": \"alice\", \"aud\": [\"shop\", \"x\"],"
            + " \"azp\": \"web\", \"exp\": {\"in\": 600}, \"groups\": [\"admins\"], \"realm\": {\"roles\": [\"r1\"]}}";

    @BeforeAll
    static void mint() throws Exception {
        StringBuilder t = new StringBuilder();
        for (String alg : List.of("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")) {
            t.append("\"").append(alg).append("\": ").append(token(alg, alg, GOOD, "")).append(", ");
        }
        String claims = "{\"iss\": \"" + ISSUER + "\", \"aud\": \"shop\", ";
        t.append("""
                "expired": %s,
                "expiredWithinSkew": %s,
                "notYetValid": %s,
                "nbfWithinSkew": %s,
                "wrongIssuer": %s,
                "wrongAudience": %s,
                "unknownKid": %s,
                "tampered": %s,
                "none": {"alg": "none", "claims": %s},
                "hs256": {"kid": "RS256", "alg": "HS256", "claims": %s},
                "noKid": {"alg": "ES256", "claims": %s, "signWith": "ES256"},
                "kidOfAnotherAlg": %s,
                "big": %s
                """.formatted(
                token("RS256", "RS256", claims + "\"exp\": {\"in\": -3600}}", ""),
                token("RS256", "RS256", claims + "\"exp\": {\"in\": -30}}", ""),
                token("RS256", "RS256", claims + "\"nbf\": {\"in\": 3600}}", ""),
                token("RS256", "RS256", claims + "\"nbf\": {\"in\": 30}}", ""),
                token("RS256", "RS256", "{\"iss\": \"https://evil.example\", \"aud\": \"shop\"}", ""),
                token("RS256", "RS256", "{\"iss\": \"" + ISSUER + "\", \"aud\": [\"bank\"]}", ""),
                token("rotated", "RS256", GOOD, "\"signWith\": \"rotated\""),
                token("RS256", "RS256", GOOD, "\"tamper\": true"),
                GOOD, GOOD, GOOD,
                token("ES256", "RS256", GOOD, "\"signWith\": \"RS256\""),
                token("RS256", "RS256", claims + "\"pad\": \"" + "x".repeat(9000) + "\"}", "")));
        String keysSpec = "[{\"kid\": \"RS256\", \"alg\": \"RS256\"}, {\"kid\": \"RS384\", \"alg\": \"RS384\"},"
                + " {\"kid\": \"RS512\", \"alg\": \"RS512\"}, {\"kid\": \"PS256\", \"alg\": \"PS256\"},"
                + " {\"kid\": \"ES256\", \"alg\": \"ES256\"}, {\"kid\": \"ES384\", \"alg\": \"ES384\"},"
                + " {\"kid\": \"EdDSA\", \"alg\": \"EdDSA\"}, {\"kid\": \"rotated\", \"alg\": \"RS256\", \"publish\": false}]";
        minted = JwtMint.mint("{\"keys\": " + keysSpec + ", \"tokens\": {" + t + "}}");
        keys = JwkSet.parse(minted.jwks(), 65536);
    }

    static JwtVerifier.Result verify(String name) {
        return VERIFIER.verify(minted.token(name), List.of(RULE), r -> keys, System.currentTimeMillis() / 1000);
    }

    @ParameterizedTest
    @ValueSource(strings = {"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"})
    void eachAlgorithmVerifies(String alg) {
        JwtVerifier.Verified v = assertInstanceOf(JwtVerifier.Verified.class, verify(alg));
        assertEquals(ISSUER + "/alice", v.auth().principal());
        assertEquals(List.of("shop", "x"), v.auth().audiences());
        assertEquals("web", v.auth().presenter());
        assertEquals(List.of("admins"), v.auth().claim(List.of("groups")));
        assertEquals(List.of("r1"), v.auth().claim(List.of("realm", "roles")));
    }

    static Stream<Arguments> refusals() {
        return Stream.of(
                Arguments.of("expired", AuthnFailure.EXPIRED, "Jwt is expired", 401),
                Arguments.of("notYetValid", AuthnFailure.NOT_YET_VALID, "Jwt not yet valid", 401),
                Arguments.of("wrongIssuer", AuthnFailure.UNKNOWN_ISSUER, "Jwt issuer is not configured", 401),
                Arguments.of("wrongAudience", AuthnFailure.AUDIENCE_NOT_ALLOWED, "Audiences in Jwt are not allowed", 403),
                Arguments.of("tampered", AuthnFailure.VERIFICATION_FAILS, "Jwt verification fails", 401),
                Arguments.of("none", AuthnFailure.UNSUPPORTED_ALG, "Jwt header [alg] is not supported", 401),
                Arguments.of("hs256", AuthnFailure.UNSUPPORTED_ALG, "Jwt header [alg] is not supported", 401),
                Arguments.of("big", AuthnFailure.TOO_LARGE, "Jwt verification fails", 401));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("refusals")
    void aBadTokenIsRefusedWithEnvoysStatus(String name, AuthnFailure failure, String body, int status) {
        JwtVerifier.Refused r = assertInstanceOf(JwtVerifier.Refused.class, verify(name));
        assertEquals(failure, r.failure(), r.detail());
        assertEquals(body, r.failure().body());
        assertEquals(status, r.failure().status());
    }

    @Test
    void aSmallClockSkewIsTolerated() {
        assertInstanceOf(JwtVerifier.Verified.class, verify("expiredWithinSkew"));
        assertInstanceOf(JwtVerifier.Verified.class, verify("nbfWithinSkew"));
    }

    @Test
    void anUnknownKidOrAKeyOfAnotherAlgorithmAsksForKeys() {
        JwtVerifier.NeedsKeys n = assertInstanceOf(JwtVerifier.NeedsKeys.class, verify("unknownKid"));
        assertTrue(n.unknownKid());
        // The token names the ES256 key but says RS256: no key fits, never a cross-algorithm check.
        assertTrue(assertInstanceOf(JwtVerifier.NeedsKeys.class, verify("kidOfAnotherAlg")).unknownKid());
        assertTrue(!assertInstanceOf(JwtVerifier.NeedsKeys.class, VERIFIER.verify(minted.token("RS256"), List.of(RULE),
                r -> null, System.currentTimeMillis() / 1000)).unknownKid(), "no keys held yet");
    }

    @Test
    void aTokenWithoutKidIsTriedAgainstTheKeysOfItsAlgorithm() {
        assertInstanceOf(JwtVerifier.Verified.class, verify("noKid"));
    }

    @Test
    void malformedTokensAreRefusedByForm() {
        long now = System.currentTimeMillis() / 1000;
        for (var c : List.of(
                List.of("abc", AuthnFailure.BAD_FORMAT), List.of("a.b.c.d", AuthnFailure.BAD_FORMAT),
                List.of("!!.e30.xx", AuthnFailure.HEADER_BASE64), List.of("bm90IGpzb24.e30.xx", AuthnFailure.HEADER_JSON),
                List.of("e30.e30.xx", AuthnFailure.BAD_ALG),
                // {"alg":"RS256","alg":"none"}: two values, refused as not JSON at all
                List.of("eyJhbGciOiJSUzI1NiIsImFsZyI6Im5vbmUifQ.e30.xx", AuthnFailure.HEADER_JSON),
                List.of("eyJhbGciOiJSUzI1NiJ9.!!.xx", AuthnFailure.PAYLOAD_BASE64),
                List.of("eyJhbGciOiJSUzI1NiJ9.e30.a=b", AuthnFailure.SIGNATURE_BASE64),
                List.of("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjF9.xx", AuthnFailure.ISS_NOT_STRING),
                List.of("eyJhbGciOiJSUzI1NiJ9.eyJleHAiOiJzb29uIn0.xx", AuthnFailure.EXP_NOT_INTEGER))) {
            JwtVerifier.Refused r = assertInstanceOf(JwtVerifier.Refused.class,
                    VERIFIER.verify((String) c.get(0), List.of(RULE), x -> keys, now), (String) c.get(0));
            assertEquals(c.get(1), r.failure(), (String) c.get(0));
        }
    }

    @Test
    void keySetsWithoutUsableKeysAreRefused() {
        for (String bad : List.of("[]", "{}", "{\"keys\": []}", "{\"keys\": [{\"kty\": \"oct\", \"k\": \"c2VjcmV0\"}]}",
                "{\"keys\": [{\"kty\": \"RSA\", \"n\": \"AQAB\", \"e\": \"AQAB\"}]}",
                "{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-521\", \"x\": \"AA\", \"y\": \"AA\"}]}")) {
            try {
                JwkSet.parse(bad, 65536);
                throw new AssertionError("accepted " + bad);
            } catch (JwkSet.Invalid expected) {
                // refused
            }
        }
    }
}
