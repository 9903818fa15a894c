package dev.ambient.hbone;

import dev.ambient.identity.SpiffeId;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Set;

/**
 * Connections are shared only between streams with the same source identity (the certificate we
 * present), the same HBONE endpoint, the same identities we accept from it, and the same local
 * address they leave from.
 *
 * @param localAddress the address new connections bind before they connect, so the server sees the
 *        source workload's own address (a receiver believes {@code Forwarded} only from a waypoint);
 *        null: the kernel chooses
 */
public record PoolKey(SpiffeId source, InetSocketAddress destination, Set<SpiffeId> expectedIdentities,
        InetAddress localAddress) {

    /** Connections leaving from whatever address the kernel chooses. */
    public PoolKey(SpiffeId source, InetSocketAddress destination, Set<SpiffeId> expectedIdentities) {
        this(source, destination, expectedIdentities, null);
    }
}
