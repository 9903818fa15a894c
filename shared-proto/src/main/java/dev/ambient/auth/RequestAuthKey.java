package dev.ambient.auth;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The AuthorizationPolicy {@code when} keys about a request's verified JWT:
 * {@code request.auth.principal}, {@code .audiences}, {@code .presenter} and
 * {@code request.auth.claims[<name>]}, nested as {@code [a][b]} up to {@link #MAX_CLAIM_DEPTH}
 * levels. One reading for both sides: the control plane accepts exactly the keys the waypoint
 * evaluates, so a key cannot be valid for one and meaningless for the other.
 */
public final class RequestAuthKey {

    /** At most this many levels in {@code request.auth.claims[a][b]...}. */
    public static final int MAX_CLAIM_DEPTH = 10;
    private static final Set<String> PLAIN = Set.of("request.auth.principal", "request.auth.audiences",
            "request.auth.presenter");
    private static final String CLAIMS = "request.auth.claims";

    private RequestAuthKey() {
    }

    public static boolean valid(String key) {
        return PLAIN.contains(key) || claimPath(key) != null;
    }

    /** The names of {@code request.auth.claims[a][b]}, or null when the key is not of that form. */
    public static List<String> claimPath(String key) {
        if (!key.startsWith(CLAIMS + "[")) {
            return null;
        }
        String rest = key.substring(CLAIMS.length());
        List<String> path = new ArrayList<>();
        while (!rest.isEmpty()) {
            int close = rest.indexOf(']');
            if (!rest.startsWith("[") || close < 2 || rest.substring(1, close).contains("[")
                    || path.size() == MAX_CLAIM_DEPTH) {
                return null;
            }
            path.add(rest.substring(1, close));
            rest = rest.substring(close + 1);
        }
        return List.copyOf(path);
    }
}
