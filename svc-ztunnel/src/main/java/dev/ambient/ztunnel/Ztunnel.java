package dev.ambient.ztunnel;

import dev.ambient.ztunnel.config.ZtunnelConfig;
import dev.ambient.ztunnel.state.LocalConfigException;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.annotation.Priority;

/** Runs this process's {@link ZtunnelNode} for the life of the Quarkus application. */
@ApplicationScoped
public class Ztunnel {

    private final ZtunnelConfig config;
    private final MeterRegistry registry;
    private volatile ZtunnelNode node;

    public Ztunnel(ZtunnelConfig config, MeterRegistry registry) {
        this.config = config;
        this.registry = registry;
    }

    // Before the admin server, which reads the node.
    void onStart(@Observes @Priority(10) StartupEvent event) throws LocalConfigException {
        node = new ZtunnelNode(config, registry).start();
    }

    void onStop(@Observes ShutdownEvent event) {
        if (node != null) {
            node.close();
        }
    }

    /** The running node; null until started. */
    public ZtunnelNode node() {
        return node;
    }
}
