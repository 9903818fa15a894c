package dev.ambient.xds.discovery;

import dev.ambient.xds.model.MeshSnapshot;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/**
 * Admin pages of the discovery server, as istiod's debug pages (port 8080), on their own listener
 * bound to a loopback address ({@code xds.debug.host}, {@code xds.debug.port}): they reveal the
 * whole mesh (every client, node, Gateway) and are not authenticated, so only someone already
 * inside the pod (kubectl exec, kubectl port-forward) reaches them. A non-loopback host is refused
 * at start.
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

    private static final Logger LOG = Logger.getLogger(DiscoveryDebugRoutes.class);

    @Inject
    DiscoveryHub hub;

    @Inject
    Vertx vertx;

    @ConfigProperty(name = "xds.debug.host", defaultValue = "127.0.0.1")
    String host;

    /** 0 = no debug listener. */
    @ConfigProperty(name = "xds.debug.port", defaultValue = "8080")
    int port;

    private HttpServer server;

    void onStart(@Observes StartupEvent event) throws UnknownHostException {
        if (port <= 0) {
            return;
        }
        if (!InetAddress.getByName(host).isLoopbackAddress()) {
            throw new IllegalStateException("xds.debug.host=" + host + " is not a loopback address: the debug pages "
                    + "reveal the mesh and are not authenticated");
        }
        Router router = Router.router(vertx);
        router.get("/debug/connections").blockingHandler(this::connections, false);
        router.get("/debug/snapshot").blockingHandler(this::snapshot, false);
        server = vertx.createHttpServer().requestHandler(router);
        server.listen(port, host).toCompletionStage().toCompletableFuture().join();
        LOG.infof("debug pages on http://%s:%d/debug/connections and /debug/snapshot", host, server.actualPort());
    }

    void onStop(@Observes ShutdownEvent event) {
        if (server != null) {
            server.close();
        }
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
