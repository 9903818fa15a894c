package dev.ambient.waypoint.admin;

import dev.ambient.waypoint.Waypoint;
import dev.ambient.waypoint.WaypointNode;
import jakarta.enterprise.context.ApplicationScoped;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/** /healthz/ready: up only with a valid certificate and a first configuration, and not while draining. */
@Readiness
@ApplicationScoped
public class WaypointReadiness implements HealthCheck {

    private final Waypoint waypoint;

    public WaypointReadiness(Waypoint waypoint) {
        this.waypoint = waypoint;
    }

    @Override
    public HealthCheckResponse call() {
        WaypointNode node = waypoint.node();
        var reason = node == null ? java.util.Optional.of("starting") : node.notReady();
        return reason.map(r -> HealthCheckResponse.named("waypoint").down().withData("reason", r).build())
                .orElseGet(() -> HealthCheckResponse.named("waypoint").up().build());
    }
}
