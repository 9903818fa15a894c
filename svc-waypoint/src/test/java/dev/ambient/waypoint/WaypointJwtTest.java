package dev.ambient.waypoint;

import static dev.ambient.waypoint.MeshFixtures.client;
import static dev.ambient.waypoint.MeshFixtures.key;
import static dev.ambient.waypoint.MeshFixtures.pod;
import static dev.ambient.waypoint.MeshFixtures.service;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.l7.ClaimToHeader;
import dev.ambient.proto.l7.JwtHeader;
import dev.ambient.proto.l7.JwtRule;
import dev.ambient.proto.l7.L7Authentication;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.L7Condition;
import dev.ambient.proto.l7.L7Operation;
import dev.ambient.proto.l7.L7Rule;
import dev.ambient.proto.l7.L7Source;
import dev.ambient.proto.workload.Action;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.StringMatch;
import dev.ambient.proto.workload.Workload;
import dev.ambient.waypoint.state.WaypointState;
import io.micrometer.prometheus.PrometheusConfig;
import io.micrometer.prometheus.PrometheusMeterRegistry;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * RequestAuthentication and JWT-based AuthorizationPolicy end to end: tokens minted by python3-jwt
 * (not our code), the JWKS served over real HTTP and fetched by the waypoint's vertx-web-client,
 * clients reaching the waypoint through real HBONE tunnels with the JDK's HttpClient, a real HTTP
 * backend that records what the application would see.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class WaypointJwtTest {

    static final String NS = "demo";
    static final int HBONE = 58008;
    static final int ENDPOINT_HBONE = 58108;
    static final int POD_PORT = 58280;
    static final String ISSUER = "https://issuer.example";
    static final String FORWARDING_ISSUER = "https://forwarding.example";
    static final SpiffeId SOURCE = new SpiffeId("cluster.local", NS, "productpage");
    static final SpiffeId WAYPOINT = new SpiffeId("cluster.local", NS, "waypoint");
    static final Service REVIEWS = service("reviews", NS, "127.0.92.10", 9080, POD_PORT, "http");
    static final InetSocketAddress JWKS_AT = new InetSocketAddress("127.0.92.50", 58430);
    static final int RANDOM_KIDS = 30;

    @TempDir
    static Path dir;
    static HboneTestBox box;
    static PrometheusMeterRegistry registry;
    static HboneTestBox.Backend backend;
    static final List<String> backendUris = java.util.Collections.synchronizedList(new ArrayList<>());
    static InetSocketAddress reviews;
    static JwtMint.Minted minted;
    static HttpServer jwksServer;
    static volatile String jwksBody;
    static volatile int jwksStatus = 200;
    static final AtomicInteger jwksFetches = new AtomicInteger();
    static final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();

    static String token(String kid, String alg, String claims, String extra) {
        return "{\"kid\": \"" + kid + "\", \"alg\": \"" + alg + "\", \"claims\": " + claims
                + (extra.isEmpty() ? "" : ", " + extra) + "}";
    }

    static String claims(String sub, String more) {
        return "{\"iss\": \"" + ISSUER + "\", \"sub\": \"" + sub + "\", \"aud\": \"shop\", \"exp\": {\"in\": 600}"
                + (more.isEmpty() ? "" : ", " + more) + "}";
    }

    @BeforeAll
    static void start() throws Exception {
        StringBuilder t = new StringBuilder();
        t.append("\"alice\": ").append(token("k1", "RS256", claims("alice",
                "\"groups\": [\"admins\", \"users\"], \"realm\": {\"roles\": [\"reader\"]}"), "")).append(",");
        t.append("\"bob\": ").append(token("k2", "ES256", claims("bob", "\"groups\": [\"users\"]"), "")).append(",");
        t.append("\"banned\": ").append(token("k2", "ES256", claims("carol",
                "\"groups\": [\"admins\"], \"realm\": {\"roles\": [\"banned\"]}"), "")).append(",");
        t.append("\"expired\": ").append(token("k1", "RS256",
                "{\"iss\": \"" + ISSUER + "\", \"aud\": \"shop\", \"exp\": {\"in\": -3600}}", "")).append(",");
        t.append("\"notYet\": ").append(token("k1", "RS256",
                "{\"iss\": \"" + ISSUER + "\", \"aud\": \"shop\", \"nbf\": {\"in\": 3600}}", "")).append(",");
        t.append("\"wrongIssuer\": ").append(token("k1", "RS256", "{\"iss\": \"https://evil.example\"}", "")).append(",");
        t.append("\"wrongAudience\": ").append(token("k1", "RS256", "{\"iss\": \"" + ISSUER + "\", \"aud\": \"bank\"}",
                "")).append(",");
        t.append("\"tampered\": ").append(token("k1", "RS256", claims("alice", ""), "\"tamper\": true")).append(",");
        t.append("\"none\": {\"alg\": \"none\", \"claims\": ").append(claims("alice", "")).append("},");
        t.append("\"big\": ").append(token("k1", "RS256", claims("alice", "\"pad\": \"" + "x".repeat(5000) + "\""), ""))
                .append(",");
        t.append("\"rotated\": ").append(token("k3", "RS256", claims("dave", ""), "")).append(",");
        t.append("\"forwarded\": ").append(token("k1", "RS256", "{\"iss\": \"" + FORWARDING_ISSUER
                + "\", \"sub\": \"erin\"}", "")).append(",");
        for (int i = 0; i < RANDOM_KIDS; i++) {
            t.append("\"random").append(i).append("\": ").append(token("kid-" + i, "RS256", claims("x", ""),
                    "\"signWith\": \"k1\"")).append(",");
        }
        t.setLength(t.length() - 1);
        minted = JwtMint.mint("{\"keys\": [{\"kid\": \"k1\", \"alg\": \"RS256\"}, {\"kid\": \"k2\", \"alg\": \"ES256\"},"
                + " {\"kid\": \"k3\", \"alg\": \"RS256\", \"publish\": false}], \"tokens\": {" + t + "}}");
        jwksBody = minted.jwks();

        jwksServer = HttpServer.create(JWKS_AT, 16);
        jwksServer.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        jwksServer.createContext("/jwks", ex -> {
            jwksFetches.incrementAndGet();
            byte[] body = jwksBody.getBytes(StandardCharsets.UTF_8);
            ex.getResponseHeaders().set("content-type", "application/json");
            ex.sendResponseHeaders(jwksStatus, body.length);
            try (OutputStream out = ex.getResponseBody()) {
                out.write(body);
            }
        });
        jwksServer.start();

        box = new HboneTestBox(dir);
        registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        WaypointNode waypoint = box.waypoint("127.0.92.1", HBONE, ENDPOINT_HBONE, Map.of(
                "waypoint.authn.max-token-bytes", "4096", "waypoint.authn.jwks-min-refetch-interval", "1s"), registry);

        Workload pod = pod("reviews-v1", NS, "reviews", "127.0.93.1", key(REVIEWS), 9080, POD_PORT);
        Workload productpage = client("productpage", NS, "productpage", "127.0.0.1");
        L7Authentication authn = L7Authentication.newBuilder().setName("jwt").setNamespace(NS)
                .addTargets("Gateway/demo/waypoint")
                .addJwtRules(JwtRule.newBuilder().setIssuer(ISSUER).addAudiences("shop")
                        .setJwksUri("http://127.0.92.50:58430/jwks").setOutputPayloadToHeader("x-jwt-payload")
                        .addOutputClaimToHeaders(ClaimToHeader.newBuilder().setHeader("x-jwt-sub").setClaim("sub")))
                .addJwtRules(JwtRule.newBuilder().setIssuer(FORWARDING_ISSUER).setJwks(minted.jwks())
                        .addFromHeaders(JwtHeader.newBuilder().setName("x-token")).addFromParams("tok")
                        .setForwardOriginalToken(true))
                .build();
        String target = "Service/demo/" + REVIEWS.getHostname();
        // /admin: only admins with a token of the issuer; the rest open to all.
        L7Authorization admins = L7Authorization.newBuilder().setName("admins").setNamespace(NS).setAction(Action.ALLOW)
                .addTargets(target)
                .addRules(L7Rule.newBuilder()
                        .addFrom(L7Source.newBuilder().addRequestPrincipals(StringMatch.newBuilder().setPrefix(ISSUER + "/")))
                        .addTo(L7Operation.newBuilder().addPaths(StringMatch.newBuilder().setPrefix("/admin")))
                        .addWhen(L7Condition.newBuilder().setKey("request.auth.claims[groups]")
                                .addValues(StringMatch.newBuilder().setExact("admins"))))
                .addRules(L7Rule.newBuilder().addTo(L7Operation.newBuilder()
                        .addNotPaths(StringMatch.newBuilder().setPrefix("/admin"))))
                .build();
        L7Authorization noBanned = L7Authorization.newBuilder().setName("no-banned").setNamespace(NS)
                .setAction(Action.DENY).addTargets(target)
                .addRules(L7Rule.newBuilder().addWhen(L7Condition.newBuilder().setKey("request.auth.claims[realm][roles]")
                        .addValues(StringMatch.newBuilder().setExact("banned"))))
                .build();
        waypoint.replaceState(WaypointState.of(List.of(pod, productpage), List.of(REVIEWS), List.of(),
                List.of(admins, noBanned), List.of(authn)));

        box.endpointServer(new InetSocketAddress("127.0.93.1", ENDPOINT_HBONE), new SpiffeId("cluster.local", NS, "reviews"));
        backend = box.backend(new InetSocketAddress("127.0.93.1", POD_PORT), ex -> {
            backendUris.add(ex.getRequestURI().toString());
            return HboneTestBox.Reply.ok("reviews");
        });
        reviews = box.clientTunnel(new InetSocketAddress("127.0.92.1", 58101), SOURCE,
                new InetSocketAddress("127.0.92.1", HBONE), WAYPOINT, new InetSocketAddress("127.0.92.10", 9080));
    }

    @AfterAll
    static void stop() throws Exception {
        if (box != null) {
            box.close();
        }
        if (jwksServer != null) {
            jwksServer.stop(0);
        }
    }

    static HttpResponse<String> get(String path, String... headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://reviews.demo:9080" + path))
                .timeout(Duration.ofSeconds(20));
        for (int i = 0; i < headers.length; i += 2) {
            b.header(headers[i], headers[i + 1]);
        }
        // The client's tunnel port stands in for the service (the ztunnel's capture): connect there.
        HttpClient c = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5)).proxy(java.net.ProxySelector.of(reviews)).build();
        try (c) {
            return c.send(b.build(), HttpResponse.BodyHandlers.ofString());
        }
    }

    static String bearer(String name) {
        return "Bearer " + minted.token(name);
    }

    static Map<String, List<String>> lastBackendHeaders() {
        return backend.headers.getLast();
    }

    static String header(Map<String, List<String>> h, String name) {
        for (var e : h.entrySet()) {
            if (e.getKey().equalsIgnoreCase(name)) {
                return String.join(",", e.getValue());
            }
        }
        return null;
    }

    @Test
    void noTokenPassesAndAVerifiedTokenReachesTheAppOnlyAsTheWaypointsHeaders() throws Exception {
        HttpResponse<String> anonymous = get("/hello", "x-jwt-sub", "mallory", "x-jwt-payload", "e30");
        assertEquals(200, anonymous.statusCode(), anonymous.body());
        assertNull(header(lastBackendHeaders(), "x-jwt-sub"), "a client-sent claim header never reaches the app");
        assertNull(header(lastBackendHeaders(), "x-jwt-payload"));

        HttpResponse<String> r = get("/hello", "authorization", bearer("alice"), "x-jwt-sub", "mallory");
        assertEquals(200, r.statusCode(), r.body());
        Map<String, List<String>> seen = lastBackendHeaders();
        assertEquals("alice", header(seen, "x-jwt-sub"));
        String payload = new String(Base64.getUrlDecoder().decode(header(seen, "x-jwt-payload")), StandardCharsets.UTF_8);
        assertTrue(payload.contains("\"sub\": \"alice\"") || payload.contains("\"sub\":\"alice\""), payload);
        assertNull(header(seen, "authorization"), "the token is removed unless its rule forwards it");
    }

    @Test
    void tokensInQueryParametersAreStrippedOrForwardedAsTheirRuleSays() throws Exception {
        HttpResponse<String> r = get("/hello?a=1&access_token=" + minted.token("alice") + "&b=2");
        assertEquals(200, r.statusCode(), r.body());
        assertEquals("/hello?a=1&b=2", backendUris.getLast());
        assertEquals("alice", header(lastBackendHeaders(), "x-jwt-sub"));

        r = get("/hello?tok=" + minted.token("forwarded"));
        assertEquals(200, r.statusCode(), r.body());
        assertEquals("/hello?tok=" + minted.token("forwarded"), backendUris.getLast(), "forwardOriginalToken");
        r = get("/hello", "x-token", minted.token("forwarded"));
        assertEquals(200, r.statusCode(), r.body());
        assertEquals(minted.token("forwarded"), header(lastBackendHeaders(), "x-token"));
        assertEquals(401, get("/hello", "x-token", minted.token("tampered")).statusCode(),
                "a token in a rule's own header is verified too");
    }

    @Test
    void eachBadTokenGetsEnvoysAnswerAndNeverReachesTheApp() throws Exception {
        Object[][] cases = {
                {"expired", 401, "Jwt is expired"},
                {"notYet", 401, "Jwt not yet valid"},
                {"wrongIssuer", 401, "Jwt issuer is not configured"},
                {"wrongAudience", 403, "Audiences in Jwt are not allowed"},
                {"tampered", 401, "Jwt verification fails"},
                {"none", 401, "Jwt header [alg] is not supported"},
                {"big", 401, "Jwt verification fails"}};
        for (Object[] c : cases) {
            int before = backend.requests.get();
            HttpResponse<String> r = get("/hello?q=secret", "authorization", bearer((String) c[0]));
            assertEquals(c[1], r.statusCode(), c[0] + ": " + r.body());
            assertEquals(c[2], r.body(), (String) c[0]);
            assertEquals("Bearer realm=\"http://reviews.demo:9080/hello\", error=\"invalid_token\"",
                    r.headers().firstValue("www-authenticate").orElse(null), (String) c[0]);
            assertEquals(before, backend.requests.get(), c[0] + " reached the app");
        }
        assertEquals(401, get("/hello", "authorization", "Bearer a.b").statusCode());
        assertEquals(200, get("/hello", "authorization", bearer("alice")).statusCode(), "a good client still gets through");
        String metrics = registry.scrape();
        for (String outcome : List.of("expired", "not_yet_valid", "unknown_issuer", "audience_not_allowed",
                "bad_signature", "unsupported_alg", "too_large", "authenticated")) {
            assertTrue(metrics.lines().anyMatch(l -> l.startsWith("waypoint_authn_requests_total{outcome=\"" + outcome
                    + "\"") && !l.endsWith(" 0.0")), outcome + " counted:\n" + metrics);
        }
    }

    @Test
    void requestPrincipalsAndClaimsAllowAndDeny() throws Exception {
        assertEquals(403, get("/admin/x").statusCode(), "anonymous: no request principal");
        assertEquals(403, get("/admin/x", "authorization", bearer("bob")).statusCode(), "not in the admins group");
        HttpResponse<String> alice = get("/admin/x", "authorization", bearer("alice"));
        assertEquals(200, alice.statusCode(), alice.body());
        HttpResponse<String> banned = get("/hello", "authorization", bearer("banned"));
        assertEquals(403, banned.statusCode(), "DENY on a nested list claim");
        assertEquals("RBAC: access denied", banned.body());
        assertEquals(200, get("/hello", "authorization", bearer("bob")).statusCode());
    }

    @Test
    void anUnknownKidRefetchesOnceAndRandomKidsCannotMakeTheWaypointFetchPerRequest() throws Exception {
        assertEquals(200, get("/hello", "authorization", bearer("alice")).statusCode()); // keys loaded
        Thread.sleep(1_100); // past the minimum refetch interval of this waypoint
        jwksBody = minted.allJwks(); // the issuer rotates in k3
        int before = jwksFetches.get();
        HttpResponse<String> rotated = get("/hello", "authorization", bearer("rotated"));
        assertEquals(200, rotated.statusCode(), rotated.body());
        assertEquals(before + 1, jwksFetches.get(), "one fetch for the unknown kid");

        long start = System.nanoTime();
        int atStart = jwksFetches.get();
        for (int i = 0; i < RANDOM_KIDS; i++) {
            HttpResponse<String> r = get("/hello", "authorization", bearer("random" + i));
            assertEquals(401, r.statusCode());
            assertEquals("Jwks doesn't have key to match kid or alg from Jwt", r.body());
        }
        long seconds = (System.nanoTime() - start) / 1_000_000_000L;
        int fetched = jwksFetches.get() - atStart;
        assertTrue(fetched <= seconds + 2, fetched + " fetches for " + RANDOM_KIDS + " random kids in " + seconds
                + " s (at most one per second)");
        assertTrue(registry.get("waypoint_jwks_fetches_total").tag("outcome", "rate_limited").counter().count()
                >= RANDOM_KIDS - fetched, "refetches refused are counted");
        assertEquals(200, get("/hello", "authorization", bearer("alice")).statusCode());
    }

    @Test
    void aJwksEndpointThatIsDownKeepsTheLastGoodKeys() throws Exception {
        assertEquals(200, get("/hello", "authorization", bearer("alice")).statusCode()); // keys loaded
        double failedBefore = registry.get("waypoint_jwks_fetches_total").tag("outcome", "failure").counter().count();
        jwksStatus = 503;
        try {
            Thread.sleep(1_100);
            int before = jwksFetches.get();
            HttpResponse<String> r = get("/hello", "authorization", bearer("random0")); // asks for a fetch
            assertEquals(401, r.statusCode());
            assertEquals(before + 1, jwksFetches.get());
            assertTrue(registry.get("waypoint_jwks_fetches_total").tag("outcome", "failure").counter().count()
                    > failedBefore, "the failed fetch is counted");
            HttpResponse<String> alice = get("/hello", "authorization", bearer("alice"));
            assertEquals(200, alice.statusCode(), "the last good keys are kept: " + alice.body());
            assertFalse(alice.body().startsWith("Jwks"));
        } finally {
            jwksStatus = 200;
        }
    }
}
