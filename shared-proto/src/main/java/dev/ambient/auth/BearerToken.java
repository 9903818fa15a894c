package dev.ambient.auth;

/** The token of an {@code authorization: Bearer <token>} header. */
public final class BearerToken {

    private static final String SCHEME = "bearer ";
    /** A Kubernetes projected token is about 1 KiB; one far bigger is refused unread. */
    static final int MAX_CHARS = 16 * 1024;

    private BearerToken() {}

    /** @throws AuthenticationFailure {@code UNAUTHENTICATED} when the header is missing or not a bearer token */
    public static String from(String authorizationHeader) {
        if (authorizationHeader == null || authorizationHeader.isBlank()) {
            throw AuthenticationFailure.unauthenticated("no token: send the service-account token in the "
                    + "\"authorization: Bearer <token>\" metadata");
        }
        if (authorizationHeader.length() > MAX_CHARS) {
            throw AuthenticationFailure.unauthenticated("the authorization metadata is longer than " + MAX_CHARS
                    + " characters");
        }
        String header = authorizationHeader.strip();
        if (header.length() <= SCHEME.length() || !header.regionMatches(true, 0, SCHEME, 0, SCHEME.length())) {
            throw AuthenticationFailure.unauthenticated("the authorization metadata is not \"Bearer <token>\"");
        }
        String token = header.substring(SCHEME.length()).strip();
        if (token.isEmpty() || token.chars().anyMatch(Character::isWhitespace)) {
            throw AuthenticationFailure.unauthenticated("the bearer token is empty or contains spaces");
        }
        return token;
    }
}
