package dev.ambient.xds.translate;

import java.util.Set;

/**
 * The AuthorizationPolicy {@code when} keys about a request's verified JWT that a waypoint
 * evaluates: {@code request.auth.principal}, {@code .audiences}, {@code .presenter} and
 * {@code request.auth.claims[<name>]}, nested as {@code [a][b]} up to ten levels. At a ztunnel
 * (no request) they fail closed like every L7 part.
 */
final class RequestAuthKeys {

    static final int MAX_CLAIM_DEPTH = 10;
    private static final Set<String> PLAIN = Set.of("request.auth.principal", "request.auth.audiences",
            "request.auth.presenter");
    private static final String CLAIMS = "request.auth.claims";

    private RequestAuthKeys() {
    }

    static boolean valid(String key) {
        if (PLAIN.contains(key)) {
            return true;
        }
        if (!key.startsWith(CLAIMS + "[")) {
            return false;
        }
        String rest = key.substring(CLAIMS.length());
        int depth = 0;
        while (!rest.isEmpty()) {
            int close = rest.indexOf(']');
            if (!rest.startsWith("[") || close < 2 || rest.substring(1, close).contains("[")
                    || ++depth > MAX_CLAIM_DEPTH) {
                return false;
            }
            rest = rest.substring(close + 1);
        }
        return true;
    }
}
