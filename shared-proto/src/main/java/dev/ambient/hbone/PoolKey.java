package dev.ambient.hbone;

import dev.ambient.identity.SpiffeId;
import java.net.InetSocketAddress;
import java.util.Set;

/**
 * Connections are shared only between streams with the same source identity (the certificate we
 * present), the same HBONE endpoint, and the same identities we accept from it.
 */
public record PoolKey(SpiffeId source, InetSocketAddress destination, Set<SpiffeId> expectedIdentities) {
}
