package dev.ambient.xds.discovery;

import dev.ambient.xds.model.MeshSnapshot;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Admin pages of the discovery server on the main HTTP port (15021), as istiod's debug pages:
 * <ul>
 * <li>{@code GET /debug/connections}: each client with its node, role, subscribed types, nonces
 * (last sent, last ACKed, awaiting ACK), resources held, pushes, ACKs and NACKs;</li>
 * <li>{@code GET /debug/snapshot}: the generation of the served snapshot and its resource counts
 * per type.</li>
 * </ul>
 * They run on a worker thread, never on the event loop.
 */
@ApplicationScoped
public class DiscoveryDebugRoutes {

    @Inject
    DiscoveryHub hub;

    void routes(@Observes Router router) {
        router.get("/debug/connections").blockingHandler(this::connections, false);
        router.get("/debug/snapshot").blockingHandler(this::snapshot, false);
    }

    private void connections(RoutingContext rc) {
        JsonArray list = new JsonArray();
        hub.clients().stream().sorted(Comparator.comparing(ClientConnection::id))
                .forEach(c -> list.add(new JsonObject(c.describe())));
        reply(rc, new JsonObject().put("totalClients", list.size()).put("clients", list));
    }

    private void snapshot(RoutingContext rc) {
        MeshSnapshot s = hub.latest();
        Map<String, Object> counts = new LinkedHashMap<>();
        for (String type : DiscoveryHub.TYPES) {
            counts.put(type, s.resources(type).size());
        }
        reply(rc, new JsonObject().put("generation", s.generation()).put("synced", hub.synced())
                .put("resources", new JsonObject(counts)));
    }

    private static void reply(RoutingContext rc, JsonObject body) {
        rc.response().putHeader("content-type", "application/json").end(body.encodePrettily());
    }
}
