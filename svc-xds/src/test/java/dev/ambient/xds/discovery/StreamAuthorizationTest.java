package dev.ambient.xds.discovery;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.discovery.DeltaDiscoveryResponse;
import dev.ambient.proto.discovery.Resource;
import dev.ambient.xds.XdsTestTls;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import jakarta.inject.Inject;
import java.net.ConnectException;
import java.net.HttpURLConnection;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.Socket;
import java.net.URI;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.stream.Collectors;
import org.jboss.logmanager.ExtLogRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Who may stream and what they see: only TLS clients with a valid token, a ztunnel only as its own
 * node, a waypoint only as its Gateway's account and only that Gateway's configuration; every
 * refusal is one log line naming the caller and the reason. The debug pages are loopback only.
 */
@QuarkusTest
@TestProfile(DiscoveryTestProfile.class)
class StreamAuthorizationTest {

    @Inject
    MutableMeshModel model;

    final List<String> logged = new CopyOnWriteArrayList<>();
    final Handler capture = new Handler() {
        @Override
        public void publish(LogRecord r) {
            logged.add(r instanceof ExtLogRecord e ? e.getFormattedMessage() : r.getMessage());
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };

    @BeforeEach
    void listen() {
        model.set(DeltaDiscoveryServiceTest.world());
        Logger.getLogger("dev.ambient.xds.discovery").addHandler(capture);
    }

    @AfterEach
    void stopListening() {
        Logger.getLogger("dev.ambient.xds.discovery").removeHandler(capture);
    }

    static String refusal(XdsTestClient c) throws InterruptedException {
        long end = System.currentTimeMillis() + 10_000;
        while (c.error == null && System.currentTimeMillis() < end) {
            Thread.sleep(10);
        }
        return String.valueOf(c.error);
    }

    List<String> refusals() throws InterruptedException {
        Thread.sleep(100); // the log line is written as the stream fails
        return logged.stream().filter(l -> l.startsWith("xds: refusing")).toList();
    }

    @Test
    void aPlaintextClientIsRefused() throws InterruptedException {
        ManagedChannel plain = ManagedChannelBuilder.forAddress("127.0.0.1", XdsTestClient.port()).usePlaintext().build();
        try (XdsTestClient c = new XdsTestClient(XdsTestClient.ztunnelNode("node-a"), plain,
                XdsTestTls.ztunnelToken("node-a"), false, null)) {
            c.subscribe(ResourceTypes.WORKLOAD);
            String error = refusal(c);
            assertTrue(error.contains("UNAVAILABLE"), error);
            assertTrue(c.responses.isEmpty());
        }
    }

    @Test
    void noTokenOrAnUnknownTokenIsUnauthenticated() throws InterruptedException {
        try (XdsTestClient none = new XdsTestClient(XdsTestClient.ztunnelNode("node-a"), XdsTestClient.channel(), null,
                false, null); XdsTestClient guessed = new XdsTestClient(XdsTestClient.ztunnelNode("node-a"),
                XdsTestClient.channel(), "ztunnel-guessed", false, null)) {
            none.subscribe(ResourceTypes.WORKLOAD);
            guessed.subscribe(ResourceTypes.WORKLOAD);
            String noToken = refusal(none);
            assertTrue(noToken.contains("UNAUTHENTICATED") && noToken.contains("no token"), noToken);
            String unknown = refusal(guessed);
            assertTrue(unknown.contains("UNAUTHENTICATED") && unknown.contains("not listed"), unknown);
            assertTrue(none.responses.isEmpty() && guessed.responses.isEmpty(), "nothing of the mesh was sent");
        }
        List<String> lines = refusals();
        assertEquals(2, lines.size(), "one line per refused stream: " + lines);
        assertTrue(lines.stream().allMatch(l -> l.contains("127.0.0.1:") && l.contains("[unauthenticated]")), lines.toString());
    }

    @Test
    void aZtunnelTokenOfNodeACannotStreamAsNodeB() throws InterruptedException {
        try (XdsTestClient asB = new XdsTestClient(XdsTestClient.ztunnelNode("node-b"), XdsTestClient.channel(),
                XdsTestTls.ztunnelToken("node-a"), false, null)) {
            asB.subscribe(ResourceTypes.WORKLOAD);
            String error = refusal(asB);
            assertTrue(error.contains("PERMISSION_DENIED") && error.contains("runs on node-a")
                    && error.contains("may not stream as node \"node-b\""), error);
            assertTrue(asB.responses.isEmpty());
        }
        List<String> lines = refusals();
        assertEquals(1, lines.size(), lines.toString());
        assertTrue(lines.getFirst().contains("service account istio-system/ztunnel (node node-a)")
                && lines.getFirst().contains("ztunnel~node-b"), lines.getFirst());

        try (XdsTestClient asA = XdsTestClient.ztunnel("node-a")) { // and as itself it is served
            asA.subscribe(ResourceTypes.WORKLOAD);
            assertFalse(asA.nextAcked().getResourcesList().isEmpty());
        }
    }

    @Test
    void onlyZtunnelAccountsStreamAsZtunnelsAndAWaypointOnlyAsItsOwnGateway() throws InterruptedException {
        String shopWaypoint = XdsTestTls.waypointToken("shop/waypoint");
        try (XdsTestClient bank = new XdsTestClient(XdsTestClient.waypointNode("bank/waypoint"), XdsTestClient.channel(),
                shopWaypoint, false, null);
                XdsTestClient everything = new XdsTestClient(XdsTestClient.ztunnelNode("node-a"), XdsTestClient.channel(),
                        shopWaypoint, false, null);
                XdsTestClient workload = new XdsTestClient(XdsTestClient.ztunnelNode("node-a"), XdsTestClient.channel(),
                        XdsTestTls.grant("sleep-token", "default", "sleep", "node-a"), false, null)) {
            bank.subscribe(ResourceTypes.SERVICE_ROUTES);
            everything.subscribe(ResourceTypes.AUTHORIZATION);
            workload.subscribe(ResourceTypes.AUTHORIZATION);
            String other = refusal(bank);
            assertTrue(other.contains("PERMISSION_DENIED") && other.contains("Gateway bank/waypoint"), other);
            String asZtunnel = refusal(everything);
            assertTrue(asZtunnel.contains("PERMISSION_DENIED") && asZtunnel.contains("may not stream as a ztunnel"), asZtunnel);
            String pod = refusal(workload);
            assertTrue(pod.contains("PERMISSION_DENIED") && pod.contains("default/sleep"), pod);
            assertTrue(bank.responses.isEmpty() && everything.responses.isEmpty() && workload.responses.isEmpty());
        }
        assertEquals(3, refusals().size());

        // the shop waypoint, as itself, sees shop's routes only
        try (XdsTestClient shop = XdsTestClient.waypoint("shop/waypoint")) {
            shop.subscribe(ResourceTypes.SERVICE_ROUTES);
            DeltaDiscoveryResponse routes = shop.nextAcked();
            Set<String> names = routes.getResourcesList().stream().map(Resource::getName).collect(Collectors.toSet());
            assertFalse(names.isEmpty());
            assertTrue(names.stream().allMatch(n -> n.startsWith("shop/")), names.toString());
        }
    }

    @Test
    void theDebugPagesAnswerOnLoopbackOnly() throws Exception {
        HttpURLConnection local = (HttpURLConnection) URI.create("http://127.0.0.1:" + XdsTestClient.debugPort()
                + "/debug/connections").toURL().openConnection();
        assertEquals(200, local.getResponseCode());
        HttpURLConnection main = (HttpURLConnection) URI.create("http://127.0.0.1:"
                + org.eclipse.microprofile.config.ConfigProvider.getConfig().getValue("quarkus.http.test-port", Integer.class)
                + "/debug/connections").toURL().openConnection();
        assertEquals(404, main.getResponseCode(), "not on the probe port any more");
        for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
            for (InetAddress address : Collections.list(nic.getInetAddresses())) {
                if (address instanceof Inet4Address && !address.isLoopbackAddress()) {
                    try (Socket s = new Socket()) {
                        assertThrows(ConnectException.class,
                                () -> s.connect(new InetSocketAddress(address, XdsTestClient.debugPort()), 2000),
                                "debug pages reachable on " + address);
                    }
                }
            }
        }
    }
}
