package dev.ambient.xds.discovery;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ambient.controlplane.HostileGrpcPeer;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.discovery.DeltaDiscoveryGrpc;
import dev.ambient.xds.XdsTestTls;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.vertx.core.json.JsonObject;
import jakarta.inject.Inject;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * What one hostile pod can make svc-xds's gRPC port (15010) hold: the bounds svc-ca has too
 * (shared-proto's {@code GrpcServerLimits}, applied by the shared customizer; svc-ca's
 * {@code GrpcHostilePeerTest} covers the rest), here with a valid ztunnel token, so the calls are
 * discovery streams the server accepts. python-h2 is the attacker; a ztunnel's discovery client
 * syncs afterwards.
 */
@QuarkusTest
@TestProfile(XdsHostilePeerTest.SmallLimits.class)
class XdsHostilePeerTest {

    public static class SmallLimits extends DiscoveryTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            Map<String, String> config = new HashMap<>(super.getConfigOverrides());
            config.put("control-plane.grpc.max-connection-idle", "5s");
            config.put("control-plane.grpc.max-connections-per-source", "20");
            config.put("control-plane.grpc.max-handshaking-connections-per-source", "10");
            return config;
        }
    }

    static final String METHOD = "/" + DeltaDiscoveryGrpc.getDeltaStreamMethod().getFullMethodName();

    @Inject
    MutableMeshModel model;

    @BeforeEach
    void world() {
        model.set(DeltaDiscoveryServiceTest.world());
    }

    static HostileGrpcPeer peer() {
        return new HostileGrpcPeer(XdsTestClient.port(), XdsTestTls.SERVER_NAME, METHOD, "127.0.0.3");
    }

    static void goodClientSyncs(String node) throws Exception {
        try (XdsTestClient c = XdsTestClient.ztunnel(node)) {
            ResourceTypes.ZTUNNEL_TYPES.forEach(c::subscribe);
            assertEquals(ResourceTypes.ZTUNNEL_TYPES.size(), c.nextAckedPerType(ResourceTypes.ZTUNNEL_TYPES).size());
        }
    }

    @Test
    void aConnectionHoldsAtMostAHundredDiscoveryStreams() throws Exception {
        try (HostileGrpcPeer.Running streams = peer().streams(1000, XdsTestTls.ztunnelToken("hostile"), 4)) {
            HostileGrpcPeer.assertAtMostCallsHeld(streams.report(), 100);
        }
        goodClientSyncs("after-streams");
    }

    @Test
    void aHeadersAndResetFloodIsToldToCalmDown() throws Exception {
        try (HostileGrpcPeer.Running flood = peer().rapidReset(20_000, XdsTestTls.ztunnelToken("hostile"))) {
            HostileGrpcPeer.assertToldToCalmDown(flood.report());
        }
        goodClientSyncs("after-flood");
    }

    @Test
    void idleConnectionsAreClosedAndOneSourceHoldsAtMostItsShare() throws Exception {
        try (HostileGrpcPeer.Running idle = peer().connections(30, true, 20)) {
            assertEquals(30, idle.nextLine().getInteger("opened"));
            goodClientSyncs("during-idle");
            JsonObject report = idle.report();
            assertEquals(30 - 20, report.getJsonObject("goaways").getInteger("11 too many connections from 127.0.0.3", 0),
                    report.toString());
            assertEquals(20, report.getJsonObject("goaways").getInteger("0 max_idle", 0), report.toString());
            assertEquals(0, report.getInteger("open_at_end"), report.toString());
        }
        goodClientSyncs("after-idle");
    }

    @Test
    void connectionsThatNeverFinishTlsAreBoundedAtAccept() throws Exception {
        try (HostileGrpcPeer.Running silent = peer().tcp(30, 4)) {
            assertEquals(30, silent.nextLine().getInteger("opened"));
            goodClientSyncs("during-handshakes"); // from 127.0.0.1: another address
            JsonObject report = silent.report();
            assertEquals(10, report.getInteger("held"), "one address holds its share of 10: " + report);
            assertEquals(20, report.getInteger("closed_at_once"), report.toString());
        }
        goodClientSyncs("after-handshakes");
    }
}
