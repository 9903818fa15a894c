package dev.ambient.waypoint.authn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.ambient.proto.l7.JwtRule;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The verified-token cache answers only while verifying again would give the same answer, with
 * tokens minted by python3-jwt ({@link JwtVerifierTest}'s).
 */
class VerifiedTokensTest {

    static final List<JwtRule> RULES = List.of(JwtVerifierTest.RULE);

    @BeforeAll
    static void mint() throws Exception {
        JwtVerifierTest.mint();
    }

    static long now() {
        return System.currentTimeMillis() / 1000;
    }

    static JwtVerifier.Verified verified(String name) {
        return assertInstanceOf(JwtVerifier.Verified.class, JwtVerifierTest.verify(name));
    }

    @Test
    void aTokenVerifiedOnceIsAnsweredFromTheCacheWithTheSameKeys() {
        VerifiedTokens cache = new VerifiedTokens(8, 60);
        String token = JwtVerifierTest.minted.token("ES256");
        assertNull(cache.get(token, RULES, r -> JwtVerifierTest.keys, now()));
        JwtVerifier.Verified v = verified("ES256");
        cache.put(token, v, JwtVerifierTest.keys);
        assertSame(v, cache.get(token, RULES, r -> JwtVerifierTest.keys, now()));
    }

    @Test
    void newKeysForTheIssuerDropTheEntry() throws Exception {
        VerifiedTokens cache = new VerifiedTokens(8, 60);
        String token = JwtVerifierTest.minted.token("RS256");
        cache.put(token, verified("RS256"), JwtVerifierTest.keys);
        // A refetch (or a rotation that removed the key) hands out another set: verify again.
        JwkSet refetched = JwkSet.parse(JwtVerifierTest.minted.jwks(), 65536);
        assertNull(cache.get(token, RULES, r -> refetched, now()));
        assertEquals(0, cache.size(), "the stale entry is gone");
    }

    @Test
    void anExpiredTokenIsNotAnsweredFromTheCache() {
        VerifiedTokens cache = new VerifiedTokens(8, 60);
        String token = JwtVerifierTest.minted.token("RS256"); // exp: now + 600
        cache.put(token, verified("RS256"), JwtVerifierTest.keys);
        long exp = verified("RS256").auth().claims().get("exp").asLong();
        assertInstanceOf(JwtVerifier.Verified.class, cache.get(token, RULES, r -> JwtVerifierTest.keys, exp + 60));
        assertNull(cache.get(token, RULES, r -> JwtVerifierTest.keys, exp + 61), "past exp and the skew");
    }

    @Test
    void anotherRuleOfTheSameIssuerFirstInTheRequestsRulesIsNotConfused() {
        VerifiedTokens cache = new VerifiedTokens(8, 60);
        String token = JwtVerifierTest.minted.token("RS256"); // aud: shop, x
        cache.put(token, verified("RS256"), JwtVerifierTest.keys);
        // Another route's policy: same issuer, another audience. The verifier would pick this rule
        // and refuse the token's audiences; the cache must not answer for it.
        JwtRule bank = JwtVerifierTest.RULE.toBuilder().clearAudiences().addAudiences("bank").build();
        List<JwtRule> rules = List.of(bank, JwtVerifierTest.RULE);
        assertNull(cache.get(token, rules, r -> JwtVerifierTest.keys, now()));
        assertInstanceOf(JwtVerifier.Refused.class, JwtVerifierTest.VERIFIER.verify(token, rules,
                r -> JwtVerifierTest.keys, now()));
    }

    @Test
    void theCacheIsBoundedLeastRecentlyUsedFirstOut() {
        VerifiedTokens cache = new VerifiedTokens(2, 60);
        for (String name : List.of("RS256", "ES256")) {
            cache.put(JwtVerifierTest.minted.token(name), verified(name), JwtVerifierTest.keys);
        }
        // RS256 used again, so ES256 is the eldest when EdDSA comes.
        assertInstanceOf(JwtVerifier.Verified.class,
                cache.get(JwtVerifierTest.minted.token("RS256"), RULES, r -> JwtVerifierTest.keys, now()));
        cache.put(JwtVerifierTest.minted.token("EdDSA"), verified("EdDSA"), JwtVerifierTest.keys);
        assertEquals(2, cache.size());
        assertNull(cache.get(JwtVerifierTest.minted.token("ES256"), RULES, r -> JwtVerifierTest.keys, now()));
        assertInstanceOf(JwtVerifier.Verified.class,
                cache.get(JwtVerifierTest.minted.token("RS256"), RULES, r -> JwtVerifierTest.keys, now()));
    }

    @Test
    void sizeZeroKeepsNothing() {
        VerifiedTokens cache = new VerifiedTokens(0, 60);
        String token = JwtVerifierTest.minted.token("ES256");
        cache.put(token, verified("ES256"), JwtVerifierTest.keys);
        assertNull(cache.get(token, RULES, r -> JwtVerifierTest.keys, now()));
    }

    /**
     * What one verification costs against a cache hit, printed (the figures quoted in the README and
     * notes; not a timed assertion). What it asserts: each good token is answered from the cache
     * with the very verification it kept, and the tampered one is refused and never kept.
     */
    @Test
    void whatAVerificationCostsAgainstAHit() {
        VerifiedTokens cache = new VerifiedTokens(8, 60);
        for (String name : List.of("RS256", "ES256", "EdDSA", "tampered")) {
            String token = JwtVerifierTest.minted.token(name);
            for (int i = 0; i < 2000; i++) { // warm-up: the JIT compiles the verifier and BigInteger
                JwtVerifierTest.VERIFIER.verify(token, RULES, r -> JwtVerifierTest.keys, now());
            }
            int n = 2000;
            long t0 = System.nanoTime();
            JwtVerifier.Result r = null;
            for (int i = 0; i < n; i++) {
                r = JwtVerifierTest.VERIFIER.verify(token, RULES, r2 -> JwtVerifierTest.keys, now());
            }
            long verify = (System.nanoTime() - t0) / n;
            long hit = -1;
            if (r instanceof JwtVerifier.Verified v) {
                cache.put(token, v, JwtVerifierTest.keys);
                t0 = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    assertSame(v, cache.get(token, RULES, r2 -> JwtVerifierTest.keys, now()));
                }
                hit = (System.nanoTime() - t0) / n;
            } else {
                assertEquals("tampered", name, name + " should verify: " + r);
                assertEquals(AuthnFailure.VERIFICATION_FAILS, ((JwtVerifier.Refused) r).failure());
                assertNull(cache.get(token, RULES, r2 -> JwtVerifierTest.keys, now()), "a refusal is never kept");
            }
            System.out.printf("%s: verify %.1f us (%s), cache hit %s%n", name, verify / 1000.0,
                    r.getClass().getSimpleName(), hit < 0 ? "never kept" : String.format("%.2f us", hit / 1000.0));
        }
    }
}
