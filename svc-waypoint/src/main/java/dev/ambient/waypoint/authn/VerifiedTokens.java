package dev.ambient.waypoint.authn;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ambient.proto.l7.JwtRule;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Tokens verified lately, so that a client sending the same token with every request pays for its
 * signature once (as Envoy's jwt_authn cache). An entry answers only while verifying again would
 * give the same result: its issuer still resolves to the same rule among the request's rules, that
 * rule's keys are still the very set it verified with (a refetch or a rotation drops the entry), and
 * exp and nbf still hold, with the same clock skew. Bounded, least recently used out first. Refusals
 * are never kept: a token that does not verify costs its verification each time.
 */
final class VerifiedTokens {

    private record Entry(JwtVerifier.Verified verified, JwkSet keys, Long exp, Long nbf) {
    }

    private final int capacity;
    private final long clockSkewSeconds;
    private final Map<String, Entry> entries;

    /** @param capacity tokens kept; 0 keeps none */
    VerifiedTokens(int capacity, long clockSkewSeconds) {
        this.capacity = capacity;
        this.clockSkewSeconds = clockSkewSeconds;
        this.entries = new LinkedHashMap<>(16, 0.75f, true);
    }

    /** The earlier verification of {@code token} if it still holds for these rules, keys and time; else null. */
    JwtVerifier.Verified get(String token, List<JwtRule> rules, JwtVerifier.Keys keys, long nowSeconds) {
        if (capacity == 0) {
            return null;
        }
        Entry e;
        synchronized (this) {
            e = entries.get(token);
        }
        if (e == null) {
            return null;
        }
        JwtRule rule = e.verified().rule();
        if (firstOfIssuer(rules, rule.getIssuer()) != rule || keys.of(rule) != e.keys()
                || (e.exp() != null && nowSeconds > e.exp() + clockSkewSeconds)
                || (e.nbf() != null && nowSeconds + clockSkewSeconds < e.nbf())) {
            synchronized (this) {
                entries.remove(token, e);
            }
            return null;
        }
        return e.verified();
    }

    /** Keeps a verification made with {@code keys}. */
    void put(String token, JwtVerifier.Verified verified, JwkSet keys) {
        if (capacity == 0 || keys == null) {
            return;
        }
        JsonNode claims = verified.auth().claims();
        Entry e = new Entry(verified, keys, longClaim(claims, "exp"), longClaim(claims, "nbf"));
        synchronized (this) {
            entries.put(token, e);
            if (entries.size() > capacity) {
                var eldest = entries.keySet().iterator();
                eldest.next();
                eldest.remove();
            }
        }
    }

    synchronized int size() {
        return entries.size();
    }

    /** The rule the verifier would pick for a token of this issuer: the first with it. */
    private static JwtRule firstOfIssuer(List<JwtRule> rules, String issuer) {
        for (JwtRule r : rules) {
            if (r.getIssuer().equals(issuer)) {
                return r;
            }
        }
        return null;
    }

    private static Long longClaim(JsonNode claims, String name) {
        JsonNode n = claims == null ? null : claims.get(name);
        return n == null ? null : n.asLong();
    }
}
