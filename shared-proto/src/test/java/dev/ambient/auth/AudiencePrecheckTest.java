package dev.ambient.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Tokens that cannot pass are refused before anyone is asked; the others are asked. */
class AudiencePrecheckTest {

    static final Caller ZTUNNEL = new Caller("istio-system", "ztunnel", "ztunnel-a", "node-a");

    /** A JWT-shaped token with these claims (the signature is the API server's business). */
    static String jwt(String claimsJson) {
        Base64.Encoder b64 = Base64.getUrlEncoder().withoutPadding();
        return b64.encodeToString("{\"alg\":\"RS256\"}".getBytes(StandardCharsets.UTF_8)) + "."
                + b64.encodeToString(claimsJson.getBytes(StandardCharsets.UTF_8)) + ".c2lnbmF0dXJl";
    }

    final AtomicInteger asked = new AtomicInteger();
    final AudiencePrecheck precheck = new AudiencePrecheck(List.of("istio-ca"), (token, peer) -> {
        asked.incrementAndGet();
        return ZTUNNEL;
    });

    String refused(String token) {
        return assertThrows(AuthenticationFailure.class, () -> precheck.authenticate(token, "10.0.0.9")).getMessage();
    }

    @Test
    void aTokenForOurAudienceIsAsked() {
        assertSame(ZTUNNEL, precheck.authenticate(jwt("{\"aud\":[\"api\",\"istio-ca\"],\"sub\":\"x\"}"), "p"));
        assertSame(ZTUNNEL, precheck.authenticate(jwt("{\"aud\":\"istio-ca\"}"), "p"));
        assertEquals(2, asked.get());
    }

    @Test
    void garbageAndTokensOfOtherAudiencesAreRefusedUnasked() {
        assertTrue(refused("ztunnel-node-a-token").contains("not a JWT"));
        assertTrue(refused("a.b").contains("not a JWT"));
        assertTrue(refused("a.b.c").contains("not a JWT"), "payload is not JSON");
        assertTrue(refused(jwt("[1,2]")).contains("not a JWT"));
        String other = refused(jwt("{\"aud\":[\"https://kubernetes.default.svc\"]}"));
        assertTrue(other.contains("not for audience istio-ca") && other.contains("kubernetes.default.svc"), other);
        assertTrue(refused(jwt("{\"sub\":\"x\"}")).contains("no audience"));
        String expired = refused(jwt("{\"aud\":\"istio-ca\",\"exp\":" + (Instant.now().getEpochSecond() - 60) + "}"));
        assertTrue(expired.contains("expired"), expired);
        assertTrue(refused("x".repeat(20_000) + ".a.b").contains("not a JWT"));
        assertEquals(0, asked.get(), "none of them reached the TokenReview");
    }
}
