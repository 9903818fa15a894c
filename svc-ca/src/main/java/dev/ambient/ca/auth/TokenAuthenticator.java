package dev.ambient.ca.auth;

import dev.ambient.ca.Refusal;

/** Tells who holds a bearer token. Blocking: call it on a worker thread. */
public interface TokenAuthenticator {

    /**
     * @throws Refusal {@code UNAUTHENTICATED} for a token that is not valid,
     *     {@code KUBERNETES_UNAVAILABLE} when it cannot be checked right now
     */
    Caller authenticate(String token);
}
