package dev.ambient.ztunnel.admin;

import dev.ambient.net.BoundedHttpListener;
import dev.ambient.net.ListenerLimit;
import dev.ambient.ztunnel.config.ZtunnelConfig;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.LaunchMode;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import io.quarkus.vertx.http.ManagementInterface;
import io.quarkus.vertx.http.runtime.VertxHttpRecorder;
import io.quarkus.vertx.http.runtime.options.HttpServerCommonHandlers;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.ext.web.Router;
import jakarta.annotation.Priority;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
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

    /** Where Quarkus's configuration puts one of these ports. */
    public record Endpoint(String name, String host, int port) {
    }

    private final Vertx vertx;
    private final ZtunnelConfig config;
    private final MeterRegistry registry;
    private final Map<String, Counter> refusals = new ConcurrentHashMap<>();
    private final List<BoundedHttpListener> listeners = new ArrayList<>();
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
        probes(c).ifPresent(e -> listen(e, request -> VertxHttpRecorder.getRootHandler().handle(request)));
        metrics(c).ifPresent(e -> {
            if (managementRouter == null) {
                throw new IllegalStateException("Quarkus fired no ManagementInterface event: no /metrics to serve");
            }
            // As Quarkus serves its management router: each request on a duplicated context.
            listen(e, HttpServerCommonHandlers.enforceDuplicatedContext(managementRouter, false));
        });
    }

    private void listen(Endpoint endpoint, Handler<HttpServerRequest> handler) {
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
        listeners.add(listener);
        // Quarkus's own "Listening on: http://host:port" wording: @QuarkusIntegrationTest finds the
        // packaged jar's HTTP port by it (the first such line, the probes'), as operators do.
        LOG.infof("%s: Listening on: http://%s:%d (at most %d connections per source, %d in all, idle %s)",
                endpoint.name(), endpoint.host(), listener.port(), bounds.maxConnectionsPerSource(),
                bounds.maxConnections(), bounds.idleTimeout());
    }

    void onStop(@Observes ShutdownEvent event) {
        listeners.forEach(BoundedHttpListener::close);
    }

    /** The probe port as configured (quarkus.http.port, test-port in tests, quarkus.http.host). */
    public static Optional<Endpoint> probes(Config c) {
        boolean test = LaunchMode.current() == LaunchMode.TEST;
        return c.getOptionalValue(test ? "quarkus.http.test-port" : "quarkus.http.port", Integer.class)
                .filter(p -> p > 0)
                .map(p -> new Endpoint("probes", c.getOptionalValue("quarkus.http.host", String.class)
                        .orElse("0.0.0.0"), p));
    }

    /** The metrics port as configured (quarkus.management.port, test-port in tests, quarkus.management.host). */
    public static Optional<Endpoint> metrics(Config c) {
        boolean test = LaunchMode.current() == LaunchMode.TEST;
        if (!c.getOptionalValue("quarkus.management.enabled", Boolean.class).orElse(false)) {
            return Optional.empty();
        }
        return c.getOptionalValue(test ? "quarkus.management.test-port" : "quarkus.management.port", Integer.class)
                .filter(p -> p > 0)
                .map(p -> new Endpoint("metrics", c.getOptionalValue("quarkus.management.host", String.class)
                        .orElse("0.0.0.0"), p));
    }
}
