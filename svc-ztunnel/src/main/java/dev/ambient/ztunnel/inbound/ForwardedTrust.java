package dev.ambient.ztunnel.inbound;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.workload.GatewayAddress;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.ztunnel.identity.WorkloadIdentity;
import dev.ambient.ztunnel.state.Addresses;
import dev.ambient.ztunnel.state.StateSnapshot;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;

/**
 * Where an inbound HBONE connection really comes from. HBONE's {@code Forwarded: for=} is a claim by
 * the peer; only the destination's own waypoint, which terminated the client's connection, knows the
 * client's address, and it is recognised by the SPIFFE identity it proved in the handshake. From any
 * other peer the claim is ignored and the connection's own source is what policy (ipBlocks,
 * source.ip), telemetry and the application see.
 */
final class ForwardedTrust {

    /** The address to believe, and a note for the access log when a claim was ignored ("" if none). */
    record ClientAddress(InetSocketAddress address, String note) {
    }

    private ForwardedTrust() {
    }

    /**
     * @param forwardedHeader the raw {@code Forwarded} value, when sent
     * @param forwardedFor its {@code for=} address, when well formed
     * @param fromWaypoint whether the peer proved one of the destination's waypoint identities
     */
    static ClientAddress decide(InetSocketAddress connectionSource, Optional<String> forwardedHeader,
            Optional<InetSocketAddress> forwardedFor, SpiffeId peer, boolean fromWaypoint) {
        if (forwardedHeader.isEmpty()) {
            return new ClientAddress(connectionSource, "");
        }
        if (!fromWaypoint) {
            // Our own outbound names the connection's own address: nothing is ignored then.
            boolean same = forwardedFor.map(a -> a.getAddress().equals(connectionSource.getAddress())).orElse(false);
            return new ClientAddress(connectionSource, same ? "" : "forwarded header ignored: " + peer
                    + " is not the destination's waypoint");
        }
        return forwardedFor.map(a -> new ClientAddress(a, ""))
                .orElseGet(() -> new ClientAddress(connectionSource, "forwarded header ignored: malformed"));
    }

    /**
     * The identities of the waypoints that may speak for clients of {@code destination}: its own
     * waypoint and those of the services it backs. A waypoint given by address is the workload (or
     * the service) at that address; by hostname, the service's endpoints; a service also brings the
     * extra identities its subject alt names allow.
     */
    static Set<SpiffeId> waypointsOf(StateSnapshot state, Workload destination, String trustDomain) {
        Set<SpiffeId> out = new HashSet<>();
        if (destination.hasWaypoint()) {
            addGateway(state, destination.getWaypoint(), trustDomain, out);
        }
        for (String key : destination.getServicesMap().keySet()) {
            int slash = key.indexOf('/');
            if (slash < 0) {
                continue;
            }
            state.serviceByHostname(key.substring(0, slash), key.substring(slash + 1))
                    .filter(Service::hasWaypoint)
                    .ifPresent(s -> addGateway(state, s.getWaypoint(), trustDomain, out));
        }
        return out;
    }

    private static void addGateway(StateSnapshot state, GatewayAddress gw, String trustDomain, Set<SpiffeId> out) {
        if (gw.hasAddress()) {
            Optional<InetAddress> ip = Addresses.fromBytes(gw.getAddress().getAddress());
            if (ip.isEmpty()) {
                return;
            }
            state.workloadByAddress(ip.get()).ifPresent(w -> out.add(WorkloadIdentity.of(w, trustDomain)));
            state.serviceByAddress(ip.get()).ifPresent(s -> addService(state, s, trustDomain, out));
        } else if (gw.hasHostname()) {
            state.serviceByHostname(gw.getHostname().getNamespace(), gw.getHostname().getHostname())
                    .ifPresent(s -> addService(state, s, trustDomain, out));
        }
    }

    private static void addService(StateSnapshot state, Service waypoint, String trustDomain, Set<SpiffeId> out) {
        state.endpoints(waypoint).forEach(w -> out.add(WorkloadIdentity.of(w, trustDomain)));
        for (String san : waypoint.getSubjectAltNamesList()) {
            try {
                out.add(SpiffeId.parse(san));
            } catch (IllegalArgumentException ignored) {
                // a SAN that is not a SPIFFE id never matches a peer
            }
        }
    }
}
