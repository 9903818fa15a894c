package dev.ambient.waypoint.authn;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/**
 * What a verified token says about the request, for AuthorizationPolicy: {@code iss/sub} as the
 * request principal, the audiences, the presenter ({@code azp}) and the claims. {@link #NONE} for a
 * request without a token.
 */
public record RequestAuth(String principal, List<String> audiences, String presenter, JsonNode claims) {

    public static final RequestAuth NONE = new RequestAuth(null, List.of(), null, null);

    public boolean authenticated() {
        return principal != null;
    }

    /**
     * The values of a claim at a path ({@code [a][b]} is {@code path = [a, b]}): a string claim is one
     * value, a list claim each of its strings; anything else (numbers, objects, absent) none, as Istio.
     */
    public List<String> claim(List<String> path) {
        if (claims == null) {
            return List.of();
        }
        JsonNode n = claims;
        for (String p : path) {
            n = n.isObject() ? n.get(p) : null;
            if (n == null) {
                return List.of();
            }
        }
        if (n.isTextual()) {
            return List.of(n.asText());
        }
        List<String> out = new ArrayList<>();
        if (n.isArray()) {
            for (JsonNode e : n) {
                if (e.isTextual()) {
                    out.add(e.asText());
                }
            }
        }
        return out;
    }
}
