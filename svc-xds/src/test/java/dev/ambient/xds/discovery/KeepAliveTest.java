package dev.ambient.xds.discovery;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.controlplane.ControlPlaneEndpoint;
import dev.ambient.controlplane.MeshRootFile;
import dev.ambient.discovery.DeltaDiscoveryClient;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.discovery.DeltaDiscoveryGrpc;
import dev.ambient.xds.XdsTestTls;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import jakarta.inject.Inject;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The proxies' discovery stream stays up while nothing changes: the shared {@link DeltaDiscoveryClient}
 * pings an idle stream, and svc-xds permits pings that often. With grpc-java's default policy (one
 * ping per 5 min) the server answered the client's third early ping with GOAWAY(ENHANCE_YOUR_CALM,
 * "too_many_pings") and every proxy's stream dropped. A peer pinging faster than permitted is still
 * sent that GOAWAY.
 */
@QuarkusTest
@TestProfile(DiscoveryTestProfile.class)
class KeepAliveTest {

    /** gRPC's smallest client keep-alive; the test server permits pings at half of it (application.properties). */
    static final Duration TEST_KEEPALIVE = Duration.ofSeconds(10);

    @Inject
    MutableMeshModel model;

    @BeforeEach
    void world() {
        model.set(DeltaDiscoveryServiceTest.world());
    }

    @Test
    void anIdleStreamWithTheProxiesKeepAliveOutlivesThreePings() throws Exception {
        Path tokenFile = Files.createTempFile("keepalive-token", ".txt");
        Files.writeString(tokenFile, XdsTestTls.ztunnelToken("keepalive"));
        ControlPlaneEndpoint xds = ControlPlaneEndpoint.of("localhost:" + XdsTestClient.port(),
                Optional.of(XdsTestTls.SERVER_NAME), MeshRootFile.load(XdsTestTls.ROOT), tokenFile);
        try (DeltaDiscoveryClient client = new DeltaDiscoveryClient(xds, TEST_KEEPALIVE,
                XdsTestClient.ztunnelNode("keepalive"), ResourceTypes.ZTUNNEL_TYPES, s -> { }, "keepalive-test")) {
            client.start();
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (!client.synced() && System.nanoTime() < end) {
                Thread.sleep(50);
            }
            assertTrue(client.synced(), "synced: " + client.lastError());
            // Nothing changes: the client pings after every 10 s of silence; three early pings were a GOAWAY.
            end = System.nanoTime() + TEST_KEEPALIVE.multipliedBy(7).dividedBy(2).toNanos();
            while (System.nanoTime() < end && client.lastError() == null) {
                Thread.sleep(100);
            }
            System.out.printf("idle stream after %d s: connected %s, error %s%n",
                    TEST_KEEPALIVE.multipliedBy(7).dividedBy(2).toSeconds(), client.connected(), client.lastError());
            assertNull(client.lastError(), "the idle stream was dropped");
            assertTrue(client.connected());
        } finally {
            Files.deleteIfExists(tokenFile);
        }
    }

    @Test
    void aPeerPingingFasterThanPermittedIsToldToCalmDown() throws Exception {
        String token = XdsTestTls.ztunnelToken("ping-flood");
        Process p = new ProcessBuilder("/usr/bin/python3", "src/test/resources/grpc-ping-flood.py", "localhost",
                String.valueOf(XdsTestClient.port()), XdsTestTls.SERVER_NAME,
                "/" + DeltaDiscoveryGrpc.getDeltaStreamMethod().getFullMethodName(), token)
                .redirectErrorStream(true).start();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        String out = new String(p.getInputStream().readAllBytes()).strip();
        System.out.println("ping flood: " + out);
        assertTrue(out.startsWith("goaway 11 too_many_pings after "), out); // 11: ENHANCE_YOUR_CALM
        // A good client is served afterwards.
        try (XdsTestClient c = XdsTestClient.ztunnel("after-flood")) {
            ResourceTypes.ZTUNNEL_TYPES.forEach(c::subscribe);
            assertEquals(ResourceTypes.ZTUNNEL_TYPES.size(), c.nextAckedPerType(ResourceTypes.ZTUNNEL_TYPES).size());
        }
    }

    /** What production runs with: the permit must be well under the clients' keep-alive, or streams drop. */
    @Test
    void theServersPermitIsBelowTheClientsKeepAlive() throws IOException {
        Properties props = new Properties();
        try (InputStream in = KeepAliveTest.class.getResourceAsStream("/application.properties")) {
            props.load(in);
        }
        Duration permit = Duration.parse("PT" + props.getProperty("quarkus.grpc.server.netty.permit-keep-alive-time", "5M")
                .toUpperCase());
        assertTrue(permit.multipliedBy(3).compareTo(DeltaDiscoveryClient.KEEPALIVE_TIME.multipliedBy(2)) <= 0,
                "permit " + permit + " vs keep-alive " + DeltaDiscoveryClient.KEEPALIVE_TIME);
        Duration testPermit = ConfigProvider.getConfig()
                .getValue("quarkus.grpc.server.netty.permit-keep-alive-time", Duration.class);
        assertEquals(TEST_KEEPALIVE.dividedBy(2), testPermit);
    }
}
