package dev.ambient.xds.discovery;

import dev.ambient.discovery.ResourceTypes;
import dev.ambient.xds.security.StreamGrant;
import dev.ambient.xds.model.MeshSnapshot;
import dev.ambient.xds.model.MeshSnapshot.Entry;
import java.util.Map;
import java.util.Set;

/**
 * What one client may see of a snapshot, by what it was granted (who its token says it is, not
 * what its Node claims; see {@code StreamAuthorizer}). A ztunnel sees every workload, service, L4 policy and
 * peer authentication (as Istio does: every ztunnel routes to every workload; this is the scale
 * limit of the design, O(mesh) memory per ztunnel and O(ztunnels) pushes per change). A waypoint
 * sees only what it serves.
 */
sealed interface ClientScope {

    /** The resources of one type this client may see, by name. */
    Map<String, Entry> visible(String typeUrl, MeshSnapshot snapshot);

    /**
     * True when a change to a resource can only affect that same resource of this client's
     * view, so that re-checking the changed names is enough (no full diff per snapshot).
     */
    boolean incremental();

    /** For the debug page. */
    String describe();

    static ClientScope of(StreamGrant grant, DiscoveryHub hub) {
        return switch (grant) {
            case StreamGrant.Waypoint waypoint -> new Waypoint(waypoint.namespace(), waypoint.name(), hub);
            case StreamGrant.Ztunnel ztunnel -> Ztunnel.INSTANCE;
        };
    }

    /** Everything of the four ztunnel types; nothing of the waypoint-only types. */
    final class Ztunnel implements ClientScope {
        static final Ztunnel INSTANCE = new Ztunnel();
        private static final Set<String> TYPES = Set.copyOf(ResourceTypes.ZTUNNEL_TYPES);

        @Override
        public Map<String, Entry> visible(String typeUrl, MeshSnapshot snapshot) {
            return TYPES.contains(typeUrl) ? snapshot.resources(typeUrl) : Map.of();
        }

        @Override
        public boolean incremental() {
            return true;
        }

        @Override
        public String describe() {
            return "all workloads, services, authorizations, peer authentications";
        }
    }

    /**
     * A waypoint: the services whose waypoint is this Gateway's service, their routes, the L7
     * policies aimed at the Gateway or at one of those services, the route backends' services
     * and every workload behind those services (or whose own waypoint is this Gateway). Its view
     * depends on other resources (a Service moving to another waypoint changes which routes are
     * visible), so it is recomputed per snapshot and diffed whole; waypoints are few and their
     * views small.
     */
    final class Waypoint implements ClientScope {
        final String namespace;
        final String name;
        /** "<name>.<namespace>.svc.cluster.local": the hostname services name as their waypoint. */
        final String hostname;
        private final DiscoveryHub hub;
        private MeshSnapshot viewOf;
        private WaypointIndex.View view;

        Waypoint(String namespace, String name, DiscoveryHub hub) {
            this.namespace = namespace;
            this.name = name;
            this.hostname = name + "." + namespace + ".svc.cluster.local";
            this.hub = hub;
        }

        @Override
        public synchronized Map<String, Entry> visible(String typeUrl, MeshSnapshot snapshot) {
            if (viewOf != snapshot) {
                view = hub.waypointIndex(snapshot).view(this);
                viewOf = snapshot;
            }
            return view.byType().getOrDefault(typeUrl, Map.of());
        }

        @Override
        public boolean incremental() {
            return false;
        }

        @Override
        public String describe() {
            return "what Gateway " + namespace + "/" + name + " (" + hostname + ") serves";
        }
    }
}
