package dev.ambient.ztunnel.admin;

import dev.ambient.net.BoundedHttpListener;
import dev.ambient.net.ListenerLimit;
import dev.ambient.net.QuarkusEndpoints;
import dev.ambient.ztunnel.config.ZtunnelConfig;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import io.quarkus.vertx.http.ManagementInterface;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.ext.web.Router;
import jakarta.annotation.Priority;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.eclipse.microprofile.config.Config;
import org.eclipse.microprofile.config.ConfigProvider;
import org.jboss.logging.Logger;

/**
 * Serves the probe port (15021, Quarkus's HTTP router: /healthz/ready, /healthz/live) and the
 * metrics port (15020, Quarkus's management router: /metrics) from shared-proto's
 * {@link BoundedHttpListener}s, bounded per source and in all (ztunnel.endpoints.*). Every pod can
 * reach both ports; Quarkus's own listeners (disabled in application.properties with
 * quarkus.http.host-enabled / quarkus.management.host-enabled = false) hold any number of idle
 * connections for 30 minutes, which let one pod exhaust the process's descriptors or heap.
 */
@ApplicationScoped
public class EndpointListeners {

    private static final Logger LOG = Logger.getLogger(EndpointListeners.class);

    private final Vertx vertx;
    private final ZtunnelConfig config;
    private final MeterRegistry registry;
    private final Map<String, Counter> refusals = new ConcurrentHashMap<>();
    private final Map<String, BoundedHttpListener> listeners = new ConcurrentHashMap<>();
    private volatile Router managementRouter;

    public EndpointListeners(Vertx vertx, ZtunnelConfig config, MeterRegistry registry) {
        this.vertx = vertx;
        this.config = config;
        this.registry = registry;
    }

    /** Fired by Quarkus once its management router has every route (before StartupEvent). */
    void managementRouter(@Observes ManagementInterface management) {
        managementRouter = management.router();
    }

    void onStart(@Observes @Priority(20) StartupEvent event) {
        Config c = ConfigProvider.getConfig();
        QuarkusEndpoints.probes(c).ifPresent(e -> listen(e, QuarkusEndpoints.httpRoot()));
        QuarkusEndpoints.metrics(c).ifPresent(e -> {
            if (managementRouter == null) {
                throw new IllegalStateException("Quarkus fired no ManagementInterface event: no /metrics to serve");
            }
            listen(e, QuarkusEndpoints.management(managementRouter));
        });
    }

    private void listen(QuarkusEndpoints.Endpoint endpoint, Handler<HttpServerRequest> handler) {
        for (ListenerLimit limit : ListenerLimit.values()) {
            refusals.computeIfAbsent(endpoint.name() + "/" + limit.label(), k -> Counter
                    .builder("ztunnel.listener.refusals")
                    .description("Connections to the probe or metrics port closed unserved, by limit")
                    .tag("listener", endpoint.name())
                    .tag("limit", limit.label())
                    .register(registry));
        }
        ZtunnelConfig.Endpoints bounds = config.endpoints();
        BoundedHttpListener listener = new BoundedHttpListener(vertx, endpoint.name(),
                new BoundedHttpListener.Limits(bounds.maxConnectionsPerSource(), bounds.maxConnections(),
                        bounds.idleTimeout(), bounds.firstRequestTimeout(), 8192, 4096),
                handler, (name, limit) -> refusals.get(name + "/" + limit.label()).increment());
        listener.listen(endpoint.host(), endpoint.port()).toCompletionStage().toCompletableFuture().join();
        listeners.put(endpoint.name(), listener);
        // Quarkus's own "Listening on: http://host:port" wording: @QuarkusIntegrationTest finds the
        // packaged jar's HTTP port by it (the first such line, the probes'), as operators do.
        LOG.infof("%s: Listening on: http://%s:%d (at most %d connections per source, %d in all, idle %s)",
                endpoint.name(), endpoint.host(), listener.port(), bounds.maxConnectionsPerSource(),
                bounds.maxConnections(), bounds.idleTimeout());
    }

    /** Connections the listener named (probes, metrics) holds now; 0 when it does not run. */
    public int connections(String name) {
        BoundedHttpListener listener = listeners.get(name);
        return listener == null ? 0 : listener.connections();
    }

    void onStop(@Observes ShutdownEvent event) {
        listeners.values().forEach(BoundedHttpListener::close);
    }
}
