package dev.ambient.ztunnel.admin;

import dev.ambient.ztunnel.Ztunnel;
import dev.ambient.ztunnel.ZtunnelNode;
import jakarta.enterprise.context.ApplicationScoped;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/**
 * Ready when the configuration is loaded, every local HBONE workload has a valid certificate and
 * a bound listener, and in in-pod mode the node agent's first snapshot is in: before that, pods on
 * this node would have their traffic refused.
 */
@Readiness
@ApplicationScoped
public class ZtunnelReadiness implements HealthCheck {

    private final Ztunnel ztunnel;

    public ZtunnelReadiness(Ztunnel ztunnel) {
        this.ztunnel = ztunnel;
    }

    @Override
    public HealthCheckResponse call() {
        var r = HealthCheckResponse.named("ztunnel");
        ZtunnelNode node = ztunnel.node();
        if (node == null || !node.started()) {
            return r.down().withData("reason", "starting").build();
        }
        long pending = node.certificates().status().stream().filter(s -> !"valid".equals(s.state())).count();
        int listeners = node.inbound().listening().size();
        int failed = node.inbound().failures().size();
        r.withData("workloads", node.store().current().workloads().size())
                .withData("listeners", listeners)
                .withData("certificates", node.certificates().status().size());
        if (node.xds().isPresent() && !node.xds().get().synced()) {
            return r.down().withData("reason", "configuration not yet received from xds: "
                    + java.util.Objects.toString(node.xds().get().lastError(), "waiting")).build();
        }
        if (node.zds().isPresent() && !node.zds().get().everSynced()) {
            // In-pod mode: until the node agent's snapshot, pods already running are not served yet.
            return r.down().withData("reason", "waiting for the node agent's snapshot over ZDS ("
                    + (node.zds().get().connected() ? "connected" : "not connected: " + node.zds().get().lastError())
                    + ")").build();
        }
        if (pending > 0) {
            return r.down().withData("reason", pending + " certificate(s) not yet valid").build();
        }
        if (failed > 0) {
            return r.down().withData("reason", failed + " listener(s) failed to bind").build();
        }
        return r.up().build();
    }
}
