package dev.ambient.waypoint;

import dev.ambient.waypoint.config.WaypointConfig;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.annotation.Priority;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;

/** Runs this process's {@link WaypointNode} for the life of the Quarkus application; drains it on SIGTERM. */
@ApplicationScoped
public class Waypoint {

    private final WaypointConfig config;
    private final MeterRegistry registry;
    private volatile WaypointNode node;

    public Waypoint(WaypointConfig config, MeterRegistry registry) {
        this.config = config;
        this.registry = registry;
    }

    void onStart(@Observes @Priority(10) StartupEvent event) {
        node = new WaypointNode(config, registry).start();
    }

    void onStop(@Observes ShutdownEvent event) {
        if (node != null) {
            node.drain(config.drainMinimum(), config.drainTimeout());
            node.close();
        }
    }

    /** The running node; null until started. */
    public WaypointNode node() {
        return node;
    }
}
