package dev.ambient.waypoint.authn;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ambient.proto.l7.ClaimToHeader;
import dev.ambient.proto.l7.JwtHeader;
import dev.ambient.proto.l7.JwtRule;
import dev.ambient.proto.l7.L7Authentication;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.QueryStringDecoder;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.function.LongSupplier;

/**
 * RequestAuthentication at the waypoint, as Istio's: the JWT rules of the policies attached to this
 * waypoint's Gateway or to the destination Service say where tokens are; a request without one
 * passes unauthenticated (AuthorizationPolicy decides what such a request may do); every token it
 * carries must verify, else 401 (403 for an audience not allowed) with Envoy's text.
 *
 * <p>Before anything, client-sent copies of the headers the rules output are removed, so the
 * application only ever sees claims the waypoint vouches for. A verified token is removed unless
 * its rule forwards it, and the rule's output headers are set.
 */
public final class RequestAuthenticator {

    /** Where a token was: a header (with the prefix taken off) or a query parameter. */
    record Location(boolean header, String name, String prefix) {
        static final Location BEARER = new Location(true, "authorization", "Bearer ");
        static final Location ACCESS_TOKEN = new Location(false, "access_token", "");
    }

    /** A token found in a request, and the rules that read that location. */
    record Found(String token, Location location, List<JwtRule> rules) {
    }

    /** The outcome for a request. */
    public sealed interface Outcome permits Anonymous, Authenticated, Refused {
    }

    public record Anonymous() implements Outcome {
    }

    /** Verified; {@link #apply} strips the tokens and sets the output headers. */
    public record Authenticated(RequestAuth auth, List<Found> tokens, List<JwtVerifier.Verified> verified)
            implements Outcome {
    }

    public record Refused(AuthnFailure failure, String reason) implements Outcome {
    }

    /** At most this many tokens are verified for one request; more is refused. */
    static final int MAX_TOKENS = 4;
    private static final Anonymous ANONYMOUS = new Anonymous();

    private final JwtVerifier verifier;
    private final JwksCache keys;
    private final VerifiedTokens verifiedTokens;
    private final SignatureFailureBudget signatureBudget;
    private final String budgetText;
    private final LongSupplier clockSeconds;
    private final Counter tokenCacheHits;
    private final Counter anonymous;
    private final Counter authenticated;
    private final Map<AuthnFailure, Counter> refused = new EnumMap<>(AuthnFailure.class);

    /**
     * @param tokenCacheSize verified tokens kept for reuse ({@link VerifiedTokens}); 0: none
     * @param failedSignaturesPerPeer failed signatures a peer may cost per {@code failedSignaturesWindow}
     *        ({@link SignatureFailureBudget}); 0: no bound
     */
    public RequestAuthenticator(JwtVerifier verifier, JwksCache keys, int tokenCacheSize, int failedSignaturesPerPeer,
            java.time.Duration failedSignaturesWindow, LongSupplier clockSeconds, MeterRegistry registry) {
        this.verifier = verifier;
        this.keys = keys;
        this.verifiedTokens = new VerifiedTokens(tokenCacheSize, verifier.clockSkewSeconds());
        this.signatureBudget = new SignatureFailureBudget(failedSignaturesPerPeer, failedSignaturesWindow.toSeconds());
        this.budgetText = failedSignaturesPerPeer + " tokens failed their signature within "
                + failedSignaturesWindow.toSeconds() + " s";
        this.clockSeconds = clockSeconds;
        tokenCacheHits = Counter.builder("waypoint_authn_token_cache_hits_total")
                .description("Tokens accepted from the verified-token cache, without verifying their signature again")
                .register(registry);
        String name = "waypoint_authn_requests_total";
        String help = "HTTP requests by RequestAuthentication outcome (only where a policy applies)";
        anonymous = Counter.builder(name).description(help).tag("outcome", "anonymous").register(registry);
        authenticated = Counter.builder(name).description(help).tag("outcome", "authenticated").register(registry);
        for (AuthnFailure f : AuthnFailure.values()) {
            refused.put(f, Counter.builder(name).description(help).tag("outcome", f.tag()).register(registry));
        }
    }

    /** The JWT rules of the policies that apply to a request (by target), in a stable order. */
    public static List<JwtRule> applicable(List<L7Authentication> policies, String gatewayTarget, String serviceTarget) {
        List<JwtRule> rules = new ArrayList<>();
        for (L7Authentication p : policies) {
            if (p.getTargetsList().contains(gatewayTarget)
                    || (serviceTarget != null && p.getTargetsList().contains(serviceTarget))) {
                rules.addAll(p.getJwtRulesList());
            }
        }
        return rules;
    }

    /**
     * Removes client-sent copies of the output headers, finds and verifies the tokens. Completes at
     * once unless keys must be fetched; then on {@code loop}. {@code peer}: the mesh identity the
     * request came from, whose failed signatures are counted against its budget.
     */
    public CompletableFuture<Outcome> authenticate(List<JwtRule> rules, HttpRequest request, String peer,
            Executor loop) {
        if (rules.isEmpty()) {
            return CompletableFuture.completedFuture(ANONYMOUS);
        }
        for (JwtRule r : rules) {
            if (!r.getOutputPayloadToHeader().isEmpty()) {
                request.headers().remove(r.getOutputPayloadToHeader());
            }
            for (ClaimToHeader c : r.getOutputClaimToHeadersList()) {
                request.headers().remove(c.getHeader());
            }
        }
        List<Found> found;
        try {
            found = find(rules, request);
        } catch (IllegalStateException tooMany) {
            return CompletableFuture.completedFuture(count(new Refused(AuthnFailure.TOO_MANY, tooMany.getMessage())));
        }
        if (found.isEmpty()) {
            anonymous.increment();
            return CompletableFuture.completedFuture(ANONYMOUS);
        }
        List<JwtVerifier.Verified> verified = new ArrayList<>();
        return verifyFrom(found, 0, verified, peer, loop).thenApply(this::count);
    }

    private CompletableFuture<Outcome> verifyFrom(List<Found> found, int i, List<JwtVerifier.Verified> verified,
            String peer, Executor loop) {
        for (int at = i; at < found.size(); at++) {
            Found f = found.get(at);
            JwtVerifier.Result r = verify(f, peer);
            switch (r) {
                case JwtVerifier.Verified v -> verified.add(v);
                case JwtVerifier.Refused x -> {
                    return CompletableFuture.completedFuture(new Refused(x.failure(), x.detail()));
                }
                case JwtVerifier.NeedsKeys n -> {
                    int next = at;
                    return keys.refresh(n.rule(), n.unknownKid()).thenApplyAsync(k -> k, loop)
                            .thenCompose(k -> afterFetch(found, next, verified, peer, loop, n));
                }
            }
        }
        return CompletableFuture.completedFuture(new Authenticated(verified.getFirst().auth(), found, verified));
    }

    /** After a fetch the token is verified once more; needing keys again is final. */
    private CompletableFuture<Outcome> afterFetch(List<Found> found, int at, List<JwtVerifier.Verified> verified,
            String peer, Executor loop, JwtVerifier.NeedsKeys before) {
        Found f = found.get(at);
        JwtVerifier.Result r = verify(f, peer);
        return switch (r) {
            case JwtVerifier.Verified v -> {
                verified.add(v);
                yield verifyFrom(found, at + 1, verified, peer, loop);
            }
            case JwtVerifier.Refused x -> CompletableFuture.completedFuture(new Refused(x.failure(), x.detail()));
            case JwtVerifier.NeedsKeys n -> CompletableFuture.completedFuture(n.unknownKid()
                    ? new Refused(AuthnFailure.NO_MATCHING_KEY, "no key of " + keySource(n.rule()) + " fits the token")
                    : new Refused(AuthnFailure.JWKS_FETCH_FAILED, "no keys from " + keySource(n.rule()) + " yet"));
        };
    }

    /**
     * From the verified-token cache if it still holds; else, unless the peer has spent its budget of
     * failed signatures, verified (kept if good, counted against the peer if its signature failed).
     */
    private JwtVerifier.Result verify(Found f, String peer) {
        long now = clockSeconds.getAsLong();
        JwtVerifier.Verified cached = verifiedTokens.get(f.token(), f.rules(), keys, now);
        if (cached != null) {
            tokenCacheHits.increment();
            return cached;
        }
        if (signatureBudget.spent(peer, now)) {
            return new JwtVerifier.Refused(AuthnFailure.SIGNATURE_BUDGET_SPENT, "not verified: " + budgetText
                    + " for " + JwtVerifier.printable(peer));
        }
        JwkSet[] used = new JwkSet[1]; // the very set the signature verified with
        JwtVerifier.Result r = verifier.verify(f.token(), f.rules(), rule -> used[0] = keys.of(rule), now);
        if (r instanceof JwtVerifier.Verified v) {
            verifiedTokens.put(f.token(), v, used[0]);
        } else if (r instanceof JwtVerifier.Refused x && x.failure() == AuthnFailure.VERIFICATION_FAILS) {
            signatureBudget.failed(peer, now);
        }
        return r;
    }

    private static String keySource(JwtRule rule) {
        return rule.getJwks().isEmpty() ? rule.getJwksUri() : "the inline JWKS of " + rule.getIssuer();
    }

    private Outcome count(Outcome o) {
        switch (o) {
            case Anonymous a -> anonymous.increment();
            case Authenticated a -> authenticated.increment();
            case Refused r -> refused.get(r.failure()).increment();
        }
        return o;
    }

    /** The tokens of a request, each with the rules that read its location. */
    static List<Found> find(List<JwtRule> rules, HttpRequest request) {
        Map<Location, List<JwtRule>> byLocation = new LinkedHashMap<>();
        for (JwtRule r : rules) {
            for (Location l : locations(r)) {
                byLocation.computeIfAbsent(l, k -> new ArrayList<>()).add(r);
            }
        }
        List<Found> found = new ArrayList<>();
        Map<String, List<String>> params = null;
        for (Map.Entry<Location, List<JwtRule>> e : byLocation.entrySet()) {
            Location l = e.getKey();
            List<String> values;
            if (l.header()) {
                values = new ArrayList<>();
                for (String v : request.headers().getAll(l.name())) {
                    if (v.regionMatches(true, 0, l.prefix(), 0, l.prefix().length())) {
                        values.add(v.substring(l.prefix().length()).trim());
                    }
                }
            } else {
                if (params == null) {
                    params = new QueryStringDecoder(request.uri()).parameters();
                }
                values = params.getOrDefault(l.name(), List.of());
            }
            for (String v : values) {
                if (found.size() == MAX_TOKENS) {
                    throw new IllegalStateException("more than " + MAX_TOKENS + " tokens");
                }
                found.add(new Found(v, l, e.getValue()));
            }
        }
        return found;
    }

    private static List<Location> locations(JwtRule r) {
        if (r.getFromHeadersCount() == 0 && r.getFromParamsCount() == 0) {
            return List.of(Location.BEARER, Location.ACCESS_TOKEN);
        }
        List<Location> out = new ArrayList<>();
        for (JwtHeader h : r.getFromHeadersList()) {
            out.add(new Location(true, h.getName().toLowerCase(java.util.Locale.ROOT), h.getPrefix()));
        }
        for (String p : r.getFromParamsList()) {
            out.add(new Location(false, p, ""));
        }
        return out;
    }

    /**
     * For an authenticated request: removes the tokens whose rule does not forward them (the whole
     * header, or the parameter from the target) and sets the output headers of the verified rules.
     */
    public static void apply(Authenticated a, HttpRequest request) {
        Set<String> dropParams = new HashSet<>();
        for (int i = 0; i < a.tokens().size(); i++) {
            Found f = a.tokens().get(i);
            JwtRule rule = a.verified().get(i).rule();
            if (rule.getForwardOriginalToken()) {
                continue;
            }
            if (f.location().header()) {
                request.headers().remove(f.location().name());
            } else {
                dropParams.add(f.location().name());
            }
        }
        if (!dropParams.isEmpty()) {
            request.setUri(withoutParams(request.uri(), dropParams));
        }
        HttpHeaders h = request.headers();
        for (JwtVerifier.Verified v : a.verified()) {
            JwtRule rule = v.rule();
            if (!rule.getOutputPayloadToHeader().isEmpty()) {
                h.set(rule.getOutputPayloadToHeader(), v.payloadSegment());
            }
            for (ClaimToHeader c : rule.getOutputClaimToHeadersList()) {
                JsonNode value = v.auth().claims().get(c.getClaim());
                if (value != null && (value.isTextual() || value.isNumber() || value.isBoolean())) {
                    String text = value.asText();
                    if (text.chars().allMatch(ch -> ch >= 0x20 && ch != 0x7f)) { // never a header splitter
                        h.set(c.getHeader(), text);
                    }
                }
            }
        }
    }

    /** The target without the named query parameters; the rest is kept byte for byte. */
    static String withoutParams(String uri, Set<String> names) {
        int q = uri.indexOf('?');
        if (q < 0) {
            return uri;
        }
        StringBuilder kept = new StringBuilder();
        for (String pair : uri.substring(q + 1).split("&", -1)) {
            int eq = pair.indexOf('=');
            String name = QueryStringDecoder.decodeComponent(eq < 0 ? pair : pair.substring(0, eq));
            if (names.contains(name) || pair.isEmpty()) {
                continue;
            }
            kept.append(kept.isEmpty() ? "" : "&").append(pair);
        }
        return uri.substring(0, q) + (kept.isEmpty() ? "" : "?" + kept);
    }
}
