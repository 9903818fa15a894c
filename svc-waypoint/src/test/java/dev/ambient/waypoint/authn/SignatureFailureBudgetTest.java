package dev.ambient.waypoint.authn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import dev.ambient.proto.l7.JwtRule;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpVersion;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A mesh peer that sends tokens with bad signatures costs a signature check each (they are never
 * cached) only up to its budget per window; past it, its uncached tokens are refused unverified
 * until the window ends, and other peers are verified as before. Tokens minted by python3-jwt.
 */
class SignatureFailureBudgetTest {

    static final String ATTACKER = "spiffe://cluster.local/ns/evil/sa/flood";
    static final String OTHER = "spiffe://cluster.local/ns/shop/sa/web";
    static final int BUDGET = 20;

    static JwtRule rule;
    Vertx vertx;
    SimpleMeterRegistry registry;
    AtomicLong clock;
    RequestAuthenticator authenticator;

    @BeforeAll
    static void mint() throws Exception {
        JwtVerifierTest.mint();
        rule = JwtVerifierTest.RULE.toBuilder().clearJwksUri().setJwks(JwtVerifierTest.minted.jwks()).build();
    }

    @BeforeEach
    void start() {
        vertx = Vertx.vertx();
        registry = new SimpleMeterRegistry();
        clock = new AtomicLong(System.currentTimeMillis() / 1000);
        JwksCache keys = new JwksCache(vertx, false, new JwksCache.Settings(Duration.ofMinutes(20),
                Duration.ofSeconds(30), Duration.ofSeconds(5), 65536), registry);
        authenticator = new RequestAuthenticator(JwtVerifierTest.VERIFIER, keys, 256, BUDGET, Duration.ofSeconds(10),
                clock::get, registry);
    }

    @AfterEach
    void stop() {
        vertx.close();
    }

    RequestAuthenticator.Outcome send(String peer, String tokenName) {
        var request = new DefaultHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/");
        request.headers().set("authorization", "Bearer " + JwtVerifierTest.minted.token(tokenName));
        return authenticator.authenticate(List.of(rule), request, peer, Runnable::run).join();
    }

    double counted(String outcome) {
        return registry.get("waypoint_authn_requests_total").tag("outcome", outcome).counter().count();
    }

    @Test
    void aPeerFloodingBadSignaturesIsVerifiedOnlyUpToItsBudget() {
        // A good token of the attacker's, verified (and cached) before the flood.
        assertInstanceOf(RequestAuthenticator.Authenticated.class, send(ATTACKER, "RS256"));
        for (int i = 0; i < 200; i++) {
            var refused = assertInstanceOf(RequestAuthenticator.Refused.class, send(ATTACKER, "tampered"));
            assertEquals(401, refused.failure().status());
            assertEquals("Jwt verification fails", refused.failure().body());
        }
        assertEquals(BUDGET, counted("bad_signature"), "signatures checked: the budget, no more");
        assertEquals(200 - BUDGET, counted("bad_signature_budget"), "the rest refused unverified");

        // Its cached good token still passes; a token not seen before is not verified.
        assertInstanceOf(RequestAuthenticator.Authenticated.class, send(ATTACKER, "RS256"));
        var fresh = assertInstanceOf(RequestAuthenticator.Refused.class, send(ATTACKER, "ES256"));
        assertEquals(AuthnFailure.SIGNATURE_BUDGET_SPENT, fresh.failure());

        // Another peer is verified as ever, good and bad.
        assertInstanceOf(RequestAuthenticator.Authenticated.class, send(OTHER, "ES256"));
        assertEquals(AuthnFailure.VERIFICATION_FAILS,
                assertInstanceOf(RequestAuthenticator.Refused.class, send(OTHER, "tampered")).failure());

        // The next window: the attacker's tokens are verified again.
        clock.addAndGet(10);
        assertInstanceOf(RequestAuthenticator.Authenticated.class, send(ATTACKER, "EdDSA"));
        assertEquals(AuthnFailure.VERIFICATION_FAILS,
                assertInstanceOf(RequestAuthenticator.Refused.class, send(ATTACKER, "tampered")).failure());
    }

    @Test
    void budgetZeroVerifiesEveryToken() {
        authenticator = new RequestAuthenticator(JwtVerifierTest.VERIFIER, new JwksCache(vertx, false,
                new JwksCache.Settings(Duration.ofMinutes(20), Duration.ofSeconds(30), Duration.ofSeconds(5), 65536),
                registry), 256, 0, Duration.ofSeconds(10), clock::get, registry);
        for (int i = 0; i < 50; i++) {
            send(ATTACKER, "tampered");
        }
        assertEquals(50, counted("bad_signature"));
        assertEquals(0, counted("bad_signature_budget"));
    }
}
