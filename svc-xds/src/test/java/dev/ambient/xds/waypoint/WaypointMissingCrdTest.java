package dev.ambient.xds.waypoint;

import static dev.ambient.xds.waypoint.WaypointTestSupport.await;
import static dev.ambient.xds.waypoint.WaypointTestSupport.createIn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.fabric8.kubernetes.api.model.StatusBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.quarkus.test.kubernetes.client.KubernetesServer;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import jakarta.inject.Inject;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;

/**
 * A cluster without the Gateway CRD: the API server answers 404 for Gateways. The application
 * starts anyway, the controller says so once and tries again; once Gateways are served (here
 * after three 404s) it works.
 */
@QuarkusTest
@WithKubernetesTestServer(crud = true, setup = WaypointMissingCrdTest.NoGatewayCrdAtFirst.class)
@TestProfile(WaypointMissingCrdTest.QuickRetry.class)
class WaypointMissingCrdTest {

    static final List<LogRecord> WARNINGS = new CopyOnWriteArrayList<>();

    public static class QuickRetry implements QuarkusTestProfile {
        @Override
        public java.util.Map<String, String> getConfigOverrides() {
            return java.util.Map.of("xds.waypoint.leader-election", "false", "xds.waypoint.retry-period", "1s");
        }
    }

    /** Runs before the application starts. */
    public static class NoGatewayCrdAtFirst implements Consumer<KubernetesServer> {
        @Override
        public void accept(KubernetesServer server) {
            server.expect().get().withPath("/apis/gateway.networking.k8s.io/v1/gateways?limit=1")
                    .andReturn(404, new StatusBuilder().withStatus("Failure").withCode(404).withReason("NotFound")
                            .withMessage("the server could not find the requested resource").build())
                    .times(3);
            Logger.getLogger(WaypointController.class.getName()).addHandler(new Handler() {
                @Override
                public void publish(LogRecord r) {
                    if (r.getLevel().intValue() >= Level.WARNING.intValue()) {
                        WARNINGS.add(r);
                    }
                }

                @Override
                public void flush() {
                }

                @Override
                public void close() {
                }
            });
        }
    }

    @Inject
    KubernetesClient client;

    @Inject
    WaypointController controller;

    @Test
    void aMissingCrdIsLoggedOnceAndRetried() {
        await("controller watching", () -> controller.isWatching() ? Boolean.TRUE : null);
        List<String> messages = WARNINGS.stream().map(r -> String.valueOf(r.getMessage()) + " "
                + java.util.Arrays.toString(r.getParameters())).toList();
        assertEquals(1, messages.stream().filter(m -> m.contains("is not installed")).count(), messages.toString());
        assertTrue(messages.stream().allMatch(m -> m.contains("is not installed")), messages.toString());

        WaypointTestSupport.installGatewayCrd(client);
        createIn(client, "waypoint-gateway.yaml", "late");
        await("Deployment", () -> client.apps().deployments().inNamespace("late").withName("waypoint").get());
    }
}
