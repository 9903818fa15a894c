package dev.ambient.waypoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.controlplane.ControlPlaneFixture;
import dev.ambient.proto.discovery.DeltaDiscoveryGrpc;
import dev.ambient.proto.discovery.DeltaDiscoveryRequest;
import dev.ambient.proto.discovery.DeltaDiscoveryResponse;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The waypoint's control-plane connections: svc-xds over TLS verified by the mounted root, with
 * the waypoint's token and its Gateway in the node; no start at all without the mounted root.
 */
class ControlPlaneClientTest {

    static final int XDS_PORT = 58910;

    @TempDir
    Path dir;

    Map<String, String> config(String rootFile) {
        return Map.of("waypoint.gateway", "shop/waypoint", "waypoint.xds-address", "127.0.0.1:" + XDS_PORT,
                "waypoint.xds-server-name", "xds.istio-system.svc", "waypoint.identity.ca-dir", dir.resolve("ca").toString(),
                "waypoint.identity.root-cert-file", rootFile,
                "waypoint.identity.token-file", dir.resolve("cp/token").toString(),
                "waypoint.listen.address", "127.0.0.1", "waypoint.listen.hbone-port", "0", "waypoint.listen.threads", "1");
    }

    @Test
    void withoutTheMountedRootTheWaypointDoesNotStart() {
        String missing = dir.resolve("nowhere/root-cert.pem").toString();
        WaypointNode node = new WaypointNode(HboneTestBox.config(config(missing)), new SimpleMeterRegistry());
        IllegalStateException e = assertThrows(IllegalStateException.class, node::start);
        assertTrue(e.getMessage().contains("cannot read the mesh root certificate " + missing), e.getMessage());
        node.close();
    }

    @Test
    void theDiscoveryStreamIsTlsWithTheWaypointsTokenAndGateway() throws Exception {
        ControlPlaneFixture tls = new ControlPlaneFixture(dir.resolve("cp"), "waypoint-shop-token");
        List<String> authorizations = new CopyOnWriteArrayList<>();
        BlockingQueue<DeltaDiscoveryRequest> requests = new LinkedBlockingQueue<>();
        ServerInterceptor record = new ServerInterceptor() {
            @Override
            public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                    ServerCallHandler<Q, R> next) {
                authorizations.add(headers.get(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER)));
                return next.startCall(call, headers);
            }
        };
        var xds = new DeltaDiscoveryGrpc.DeltaDiscoveryImplBase() {
            @Override
            public StreamObserver<DeltaDiscoveryRequest> deltaStream(StreamObserver<DeltaDiscoveryResponse> out) {
                return ControlPlaneFixture.collecting(requests);
            }
        };
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", XDS_PORT))
                .sslContext(tls.serverTls("xds.istio-system.svc"))
                .addService(ServerInterceptors.intercept(xds, record)).build().start();
        try (WaypointNode node = new WaypointNode(HboneTestBox.config(config(tls.rootFile.toString())),
                new SimpleMeterRegistry()).start()) {
            DeltaDiscoveryRequest first = requests.poll(20, TimeUnit.SECONDS);
            assertTrue(first != null, "the waypoint subscribed");
            assertEquals("shop/waypoint", first.getNode().getGateway());
            assertEquals(List.of("Bearer waypoint-shop-token"), authorizations);
        } finally {
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }
}
