package dev.ambient.ca.auth;

import dev.ambient.ca.Refusal;
import dev.ambient.ca.Refusal.Reason;

/** The token of an {@code authorization: Bearer <token>} header. */
public final class BearerToken {

    private static final String SCHEME = "bearer ";

    private BearerToken() {}

    /** @throws Refusal {@code UNAUTHENTICATED} when the header is missing or not a bearer token */
    public static String from(String authorizationHeader) {
        if (authorizationHeader == null || authorizationHeader.isBlank()) {
            throw new Refusal(Reason.UNAUTHENTICATED, "no token: send the service-account token in the "
                    + "\"authorization: Bearer <token>\" metadata");
        }
        String header = authorizationHeader.strip();
        if (header.length() <= SCHEME.length() || !header.regionMatches(true, 0, SCHEME, 0, SCHEME.length())) {
            throw new Refusal(Reason.UNAUTHENTICATED, "the authorization metadata is not \"Bearer <token>\"");
        }
        String token = header.substring(SCHEME.length()).strip();
        if (token.isEmpty() || token.chars().anyMatch(Character::isWhitespace)) {
            throw new Refusal(Reason.UNAUTHENTICATED, "the bearer token is empty or contains spaces");
        }
        return token;
    }
}
