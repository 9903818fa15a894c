package dev.ambient.net;

import io.quarkus.runtime.LaunchMode;
import io.quarkus.vertx.http.runtime.VertxHttpRecorder;
import io.quarkus.vertx.http.runtime.options.HttpServerCommonHandlers;
import io.vertx.core.Handler;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.ext.web.Router;
import java.util.Optional;
import org.eclipse.microprofile.config.Config;

/**
 * Where Quarkus's configuration puts a service's probe port (quarkus.http.*) and metrics port
 * (quarkus.management.*), and the handlers Quarkus itself serves there, so a service can turn
 * Quarkus's unbounded listeners off (quarkus.http.host-enabled / quarkus.management.host-enabled =
 * false) and serve the very same answers from {@link BoundedHttpListener}s. Not a bean: a service
 * opts in with one of its own (svc-ztunnel's admin/EndpointListeners).
 */
public final class QuarkusEndpoints {

    /** One port as configured: a name for logs and metrics, the host and the port to bind. */
    public record Endpoint(String name, String host, int port) {
    }

    private QuarkusEndpoints() {
    }

    /** The HTTP port (quarkus.http.port, test-port in tests, quarkus.http.host), named "probes". */
    public static Optional<Endpoint> probes(Config c) {
        boolean test = LaunchMode.current() == LaunchMode.TEST;
        return c.getOptionalValue(test ? "quarkus.http.test-port" : "quarkus.http.port", Integer.class)
                .filter(p -> p > 0)
                .map(p -> new Endpoint("probes", c.getOptionalValue("quarkus.http.host", String.class)
                        .orElse("0.0.0.0"), p));
    }

    /** The management port when enabled (quarkus.management.port, test-port in tests, host), named "metrics". */
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

    /** What Quarkus's HTTP server would serve: its root handler, read per request (it is built after start-up begins). */
    public static Handler<HttpServerRequest> httpRoot() {
        return request -> VertxHttpRecorder.getRootHandler().handle(request);
    }

    /**
     * What Quarkus's management server would serve: its management router (from the
     * {@code io.quarkus.vertx.http.ManagementInterface} event), each request on a duplicated
     * context as Quarkus does.
     */
    public static Handler<HttpServerRequest> management(Router router) {
        return HttpServerCommonHandlers.enforceDuplicatedContext(router, false);
    }
}
