package dev.ambient.xds.waypoint;

import static dev.ambient.xds.waypoint.WaypointTestSupport.await;
import static dev.ambient.xds.waypoint.WaypointTestSupport.createIn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.fabric8.kubernetes.api.model.coordination.v1.Lease;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import jakarta.inject.Inject;
import org.junit.jupiter.api.Test;

/**
 * With the default configuration (leader election on), the controller acts only after it holds
 * the Lease ambient-xds-waypoint-controller in the system namespace. The mock server in CRUD mode
 * stores Leases and checks their resourceVersion, which is all fabric8's LeaderElector needs.
 */
@QuarkusTest
@WithKubernetesTestServer(crud = true)
class WaypointLeaderElectionTest {

    @Inject
    KubernetesClient client;

    @Inject
    WaypointController controller;

    @Test
    void leadershipIsTakenThroughALeaseAndThenTheControllerActs() {
        Lease lease = await("Lease held", () -> client.resources(Lease.class).inNamespace("istio-system")
                .withName(WaypointController.LEASE_NAME).get(),
                l -> l.getSpec() != null && l.getSpec().getHolderIdentity() != null);
        assertFalse(lease.getSpec().getHolderIdentity().isBlank());
        assertEquals(15, lease.getSpec().getLeaseDurationSeconds());
        await("controller active", () -> controller.isActive() ? Boolean.TRUE : null);

        // The lease is renewed (every 2 s) while this replica leads.
        var firstRenew = lease.getSpec().getRenewTime();
        await("Lease renewed", () -> client.resources(Lease.class).inNamespace("istio-system")
                .withName(WaypointController.LEASE_NAME).get(), l -> !l.getSpec().getRenewTime().equals(firstRenew));

        WaypointTestSupport.installGatewayCrd(client);
        createIn(client, "waypoint-gateway.yaml", "leader");
        await("Deployment", () -> client.apps().deployments().inNamespace("leader").withName("waypoint").get());
        assertTrue(controller.isActive());
    }
}
