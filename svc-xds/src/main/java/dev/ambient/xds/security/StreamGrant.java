package dev.ambient.xds.security;

import dev.ambient.auth.Caller;

/** What an authenticated client may stream: decided once per stream by {@link StreamAuthorizer}. */
public sealed interface StreamGrant {

    Caller caller();

    /** A ztunnel, of the node its token is bound to. */
    record Ztunnel(Caller caller, String nodeName) implements StreamGrant {}

    /** A waypoint of one Gateway, running as that Gateway's service account. */
    record Waypoint(Caller caller, String namespace, String name) implements StreamGrant {}
}
