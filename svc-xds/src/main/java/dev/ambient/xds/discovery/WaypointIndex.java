package dev.ambient.xds.discovery;

import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.l7.L7Authentication;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.l7.WeightedBackend;
import dev.ambient.proto.workload.GatewayAddress;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.xds.model.MeshSnapshot;
import dev.ambient.xds.model.MeshSnapshot.Entry;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Lookups built once per snapshot (only while a waypoint is connected) so that each waypoint's
 * view costs O(its view), not O(mesh): services by waypoint hostname, workloads by service,
 * workloads by their own waypoint, L7 policies by target.
 */
final class WaypointIndex {

    /** One waypoint's resources, type URL -> name -> entry. */
    record View(Map<String, Map<String, Entry>> byType) {
        int size() {
            return byType.values().stream().mapToInt(Map::size).sum();
        }
    }

    private final MeshSnapshot snapshot;
    private final Map<String, List<String>> servicesByWaypoint = new HashMap<>();
    private final Map<String, List<String>> workloadsByService = new HashMap<>();
    private final Map<String, List<String>> workloadsByWaypoint = new HashMap<>();
    private final Map<String, List<String>> l7ByTarget = new HashMap<>();
    private final Map<String, List<String>> authnByTarget = new HashMap<>();

    WaypointIndex(MeshSnapshot snapshot) {
        this.snapshot = snapshot;
        for (Entry e : snapshot.resources(ResourceTypes.SERVICE).values()) {
            String wp = waypointHost(((Service) e.resource()).getWaypoint());
            if (wp != null) {
                servicesByWaypoint.computeIfAbsent(wp, k -> new ArrayList<>()).add(e.name());
            }
        }
        for (Entry e : snapshot.resources(ResourceTypes.WORKLOAD).values()) {
            Workload w = (Workload) e.resource();
            for (String svc : w.getServicesMap().keySet()) {
                workloadsByService.computeIfAbsent(svc, k -> new ArrayList<>()).add(e.name());
            }
            String wp = waypointHost(w.getWaypoint());
            if (wp != null) {
                workloadsByWaypoint.computeIfAbsent(wp, k -> new ArrayList<>()).add(e.name());
            }
        }
        for (Entry e : snapshot.resources(ResourceTypes.L7_AUTHORIZATION).values()) {
            for (String target : ((L7Authorization) e.resource()).getTargetsList()) {
                l7ByTarget.computeIfAbsent(target, k -> new ArrayList<>()).add(e.name());
            }
        }
        for (Entry e : snapshot.resources(ResourceTypes.L7_AUTHENTICATION).values()) {
            for (String target : ((L7Authentication) e.resource()).getTargetsList()) {
                authnByTarget.computeIfAbsent(target, k -> new ArrayList<>()).add(e.name());
            }
        }
    }

    private static String waypointHost(GatewayAddress gw) {
        return gw.hasHostname() && !gw.getHostname().getHostname().isEmpty() ? gw.getHostname().getHostname() : null;
    }

    MeshSnapshot snapshot() {
        return snapshot;
    }

    View view(ClientScope.Waypoint wp) {
        Map<String, Entry> services = snapshot.resources(ResourceTypes.SERVICE);
        Map<String, Entry> allRoutes = snapshot.resources(ResourceTypes.SERVICE_ROUTES);
        Map<String, Entry> allL7 = snapshot.resources(ResourceTypes.L7_AUTHORIZATION);
        Map<String, Entry> allWorkloads = snapshot.resources(ResourceTypes.WORKLOAD);

        List<String> served = servicesByWaypoint.getOrDefault(wp.hostname, List.of());
        Map<String, Entry> routes = new HashMap<>();
        Set<String> neededServices = new LinkedHashSet<>(served);
        String gatewayTarget = "Gateway/" + wp.namespace + "/" + wp.name;
        Set<String> l7Names = new LinkedHashSet<>(l7ByTarget.getOrDefault(gatewayTarget, List.of()));
        Set<String> authnNames = new LinkedHashSet<>(authnByTarget.getOrDefault(gatewayTarget, List.of()));
        for (String svcName : served) {
            Entry r = allRoutes.get(svcName);
            if (r != null) {
                routes.put(svcName, r);
                for (Route route : ((ServiceRoutes) r.resource()).getRoutesList()) {
                    for (WeightedBackend b : route.getBackendsList()) {
                        neededServices.add(b.getService());
                    }
                }
            }
            Service svc = (Service) services.get(svcName).resource();
            // Policies name a service by hostname (the contract) or, leniently, by its short name.
            l7Names.addAll(l7ByTarget.getOrDefault("Service/" + svc.getNamespace() + "/" + svc.getHostname(), List.of()));
            l7Names.addAll(l7ByTarget.getOrDefault("Service/" + svc.getNamespace() + "/" + svc.getName(), List.of()));
            authnNames.addAll(authnByTarget.getOrDefault("Service/" + svc.getNamespace() + "/" + svc.getHostname(),
                    List.of()));
        }
        Map<String, Entry> l7 = new HashMap<>();
        for (String n : l7Names) {
            l7.put(n, allL7.get(n));
        }
        Map<String, Entry> allAuthn = snapshot.resources(ResourceTypes.L7_AUTHENTICATION);
        Map<String, Entry> authn = new HashMap<>();
        for (String n : authnNames) {
            authn.put(n, allAuthn.get(n));
        }
        Map<String, Entry> svcs = new HashMap<>();
        Map<String, Entry> workloads = new HashMap<>();
        for (String s : neededServices) {
            Entry e = services.get(s);
            if (e != null) {
                svcs.put(s, e);
            }
            for (String uid : workloadsByService.getOrDefault(s, List.of())) {
                workloads.put(uid, allWorkloads.get(uid));
            }
        }
        for (String uid : workloadsByWaypoint.getOrDefault(wp.hostname, List.of())) {
            workloads.put(uid, allWorkloads.get(uid));
        }
        return new View(Map.of(ResourceTypes.SERVICE_ROUTES, routes, ResourceTypes.L7_AUTHORIZATION, l7,
                ResourceTypes.L7_AUTHENTICATION, authn, ResourceTypes.SERVICE, svcs, ResourceTypes.WORKLOAD, workloads));
    }
}
