package dev.ambient.auth;

/**
 * What a gRPC call brings to authenticate itself: its {@code authorization} metadata and where it
 * comes from.
 *
 * @param authorization the metadata as sent, or null
 * @param host the caller's IP address (per-caller bounds)
 * @param address {@code ip:port}, for logs
 */
public record CallerCredentials(String authorization, String host, String address) {

    /** The bearer token; throws {@code UNAUTHENTICATED} when there is none or it is malformed. */
    public String token() {
        return BearerToken.from(authorization);
    }

    /** Authenticates with {@code authenticator}; blocking. */
    public Caller authenticate(TokenAuthenticator authenticator) {
        return authenticator.authenticate(token(), host);
    }
}
