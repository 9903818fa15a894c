package dev.ambient.auth;

/**
 * Tells who holds a bearer token. Blocking (a TokenReview, a file): call it on a worker thread.
 * Implementations decorate each other: a cheap shape and audience check, a cache, a bound on
 * concurrent checks, and the check itself.
 */
public interface TokenAuthenticator {

    /**
     * @param peer the caller's address (host), for per-caller bounds
     * @throws AuthenticationFailure {@code UNAUTHENTICATED} for a token that is not valid,
     *     {@code UNAVAILABLE} when it cannot be checked right now
     */
    Caller authenticate(String token, String peer);
}
