package dev.ambient.ztunnel.outbound;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import java.net.InetSocketAddress;
import java.util.Set;

/** Where an outbound connection goes, decided from the state. */
public sealed interface Route {

    /** For logs: "hbone", "hbone-waypoint", "passthrough", "passthrough-dns", "refused". */
    String via();

    /**
     * Through an HBONE tunnel.
     *
     * @param endpoint the HBONE server to dial (destination pod or waypoint, port 15008)
     * @param authority what to CONNECT to (pod ip:targetPort, or service VIP:port for a waypoint)
     * @param expected identities the server may prove
     * @param destination the destination workload, when known (null when sent to a waypoint for a service)
     * @param service the service addressed, if any
     */
    record Hbone(InetSocketAddress endpoint, InetSocketAddress authority, Set<SpiffeId> expected,
            Workload destination, Service service, boolean viaWaypoint) implements Route {
        @Override
        public String via() {
            return viaWaypoint ? "hbone-waypoint" : "hbone";
        }
    }

    /** Plain TCP: the destination is not in the mesh, or unknown. */
    record Passthrough(InetSocketAddress target, Workload destination, Service service) implements Route {
        @Override
        public String via() {
            return "passthrough";
        }
    }

    /**
     * Plain TCP to a destination known by name only (a ServiceEntry with resolution DNS): the name is
     * resolved when the connection is made, and the address checked like any other.
     */
    record ByName(String hostname, int port, Workload destination, Service service) implements Route {
        @Override
        public String via() {
            return "passthrough-dns";
        }
    }

    /** Nothing can serve it (e.g. a service without healthy endpoints, or an unknown port). */
    record Refused(String reason) implements Route {
        @Override
        public String via() {
            return "refused";
        }
    }
}
