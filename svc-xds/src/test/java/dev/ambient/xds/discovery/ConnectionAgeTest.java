package dev.ambient.xds.discovery;

import static dev.ambient.xds.discovery.Fixtures.isWorkload;
import static dev.ambient.xds.discovery.Fixtures.relabel;
import static dev.ambient.xds.discovery.Fixtures.replace;
import static dev.ambient.xds.discovery.Fixtures.uid;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Message;
import dev.ambient.controlplane.ControlPlaneEndpoint;
import dev.ambient.controlplane.MeshRootFile;
import dev.ambient.discovery.DeltaDiscoveryClient;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.workload.Workload;
import dev.ambient.xds.XdsTestTls;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import jakarta.inject.Inject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * svc-xds replaces a connection once it is {@code control-plane.grpc.max-connection-age} old, so
 * that proxies spread over replicas added since they connected (the Deployment scaled out); before,
 * a proxy stayed on its first replica for good. The proxies' own discovery client (shared-proto's
 * {@link DeltaDiscoveryClient}) sees its stream cut after the grace, resubscribes on a new
 * connection with what it holds, and keeps receiving changes.
 */
@QuarkusTest
@TestProfile(ConnectionAgeTest.ShortAge.class)
class ConnectionAgeTest {

    public static class ShortAge extends DiscoveryTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            Map<String, String> config = new HashMap<>(super.getConfigOverrides());
            config.put("control-plane.grpc.max-connection-age", "3s");
            config.put("control-plane.grpc.max-connection-age-grace", "1s");
            return config;
        }
    }

    @Inject
    MutableMeshModel model;

    @Test
    void aStreamOlderThanTheMaxAgeMovesToANewConnectionAndKeepsReceivingChanges() throws Exception {
        List<Message> world = DeltaDiscoveryServiceTest.world();
        model.set(world);
        Path tokenFile = Files.createTempFile("age-token", ".txt");
        Files.writeString(tokenFile, XdsTestTls.ztunnelToken("aging"));
        ControlPlaneEndpoint xds = ControlPlaneEndpoint.of("localhost:" + XdsTestClient.port(),
                Optional.of(XdsTestTls.SERVER_NAME), MeshRootFile.load(XdsTestTls.ROOT), tokenFile);
        AtomicReference<DeltaDiscoveryClient.Snapshot> last = new AtomicReference<>();
        try (DeltaDiscoveryClient client = new DeltaDiscoveryClient(xds, XdsTestClient.ztunnelNode("aging"),
                ResourceTypes.ZTUNNEL_TYPES, last::set, "age-test")) {
            client.start();
            await("synced", 20, client::synced);
            int workloads = last.get().of(ResourceTypes.WORKLOAD, Workload.class).size();
            // 3 s (+ up to 10% jitter) and 1 s of grace: the stream is cut, not kept forever
            await("the aged connection replaced", 15, () -> client.lastError() != null);
            System.out.println("after max-connection-age: " + client.lastError());
            assertEquals(workloads, last.get().of(ResourceTypes.WORKLOAD, Workload.class).size(),
                    "what the proxy knows is kept meanwhile");
            String cart1 = uid("shop", "cart-1");
            model.set(replace(world, isWorkload(cart1), m -> relabel(m, "aged")));
            await("a change after the move reaches the proxy", 15, () -> last.get()
                    .of(ResourceTypes.WORKLOAD, Workload.class).stream()
                    .anyMatch(w -> "aged".equals(w.getCanonicalRevision())));
            assertTrue(client.connected());
            assertEquals(workloads, last.get().of(ResourceTypes.WORKLOAD, Workload.class).size());
        } finally {
            Files.deleteIfExists(tokenFile);
        }
    }

    private static void await(String what, int seconds, BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < end, what + " within " + seconds + " s");
            Thread.sleep(50);
        }
    }
}
