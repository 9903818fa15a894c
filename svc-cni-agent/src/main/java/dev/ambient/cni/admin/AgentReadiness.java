package dev.ambient.cni.admin;

import dev.ambient.cni.CniNode;
import dev.ambient.cni.NodeAgent;
import jakarta.enterprise.context.ApplicationScoped;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/**
 * /healthz/ready: up once the agent listens for the plugin and the ztunnel and has listed the
 * node's pods (before that, a ztunnel would get a partial snapshot and a plugin would wait).
 */
@Readiness
@ApplicationScoped
public class AgentReadiness implements HealthCheck {

    private final NodeAgent agent;

    public AgentReadiness(NodeAgent agent) {
        this.agent = agent;
    }

    @Override
    public HealthCheckResponse call() {
        var r = HealthCheckResponse.named("cni-agent");
        if (!agent.enabled()) {
            return r.up().withData("enrolment", "disabled (cni.enabled=false)").build();
        }
        CniNode node = agent.node();
        if (node == null) {
            return r.down().withData("reason", "starting").build();
        }
        if (!node.enroller().sourceSynced()) {
            return r.down().withData("reason", "the node's pods are not listed yet").build();
        }
        return r.up().build();
    }
}
