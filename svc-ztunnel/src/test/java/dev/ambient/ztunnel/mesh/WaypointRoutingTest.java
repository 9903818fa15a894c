package dev.ambient.ztunnel.mesh;

import static dev.ambient.ztunnel.mesh.LoopbackMesh.roundTrip;
import static dev.ambient.ztunnel.mesh.LoopbackMesh.sha256;
import static dev.ambient.ztunnel.mesh.LoopbackMesh.socks;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.hbone.HboneRequest;
import dev.ambient.hbone.HboneAdmission;
import dev.ambient.hbone.HboneServerInitializer;
import dev.ambient.hbone.HboneSettings;
import dev.ambient.hbone.RelayObserver;
import dev.ambient.identity.CertificateAuthority;
import dev.ambient.identity.HboneTls;
import dev.ambient.identity.SpiffeId;
import dev.ambient.net.Transport;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A service with a waypoint: the ztunnel sends its traffic to the waypoint's HBONE port with the
 * service VIP:port as authority, checking the waypoint's identity; the waypoint (a stand-in built
 * on the shared HBONE server code, forwarding to the service's pod) sees the client's identity.
 */
class WaypointRoutingTest {

    static final String MESH = """
            workloads:
            - name: sleep
              namespace: default
              serviceAccount: sleep
              workloadIps: [127.0.90.1]
              node: node-a
              protocol: HBONE
            - name: waypoint
              namespace: default
              serviceAccount: waypoint
              workloadIps: [127.0.91.1]
              node: node-w
              protocol: HBONE
            - name: reviews
              namespace: default
              serviceAccount: reviews
              workloadIps: [127.0.92.1]
              node: node-w
              protocol: TCP
              services:
                default/reviews.default.svc.cluster.local: {80: 28200}
            services:
            - name: reviews
              namespace: default
              vips: [127.0.100.20]
              ports: {80: 28200}
              waypoint: {address: 127.0.91.1}
            """;

    static final InetSocketAddress SOCKS_A = new InetSocketAddress("127.0.0.10", 25380);

    @TempDir
    static Path dir;
    static LoopbackMesh mesh;
    static Transport transport;
    static Channel waypoint;
    static dev.ambient.ztunnel.ZtunnelNode nodeA;
    static final List<String> seen = new CopyOnWriteArrayList<>();

    @BeforeAll
    static void start() throws Exception {
        mesh = new LoopbackMesh(dir, MESH);
        mesh.echo("127.0.92.1", 28200);
        nodeA = mesh.node("node-a", "127.0.0.10", SOCKS_A.getPort());
        CertificateAuthority ca = CertificateAuthority.loadOrCreate(mesh.caDir(), "cluster.local", Duration.ofDays(1));
        var cert = ca.issue(new SpiffeId("cluster.local", "default", "waypoint"), Duration.ofHours(1));
        var tls = HboneTls.serverContext(cert, List.of(ca.root()));
        transport = Transport.create("test-waypoint", 1);
        waypoint = new ServerBootstrap().group(transport.group()).channel(transport.serverChannel())
                .childHandler(new HboneServerInitializer(() -> tls, HboneSettings.DEFAULTS,
                        HboneAdmission.forThisProcess(HboneAdmission.Limits.DEFAULTS), WaypointRoutingTest::forward))
                .bind(new InetSocketAddress("127.0.91.1", LoopbackMesh.HBONE_PORT)).sync().channel();
    }

    /** A minimal waypoint: record who asked for what, then forward to the service's pod. */
    private static void forward(HboneRequest request) {
        seen.add(request.peer().uri() + " -> " + request.target().getAddress().getHostAddress() + ":"
                + request.target().getPort());
        new Bootstrap().group(request.eventLoop()).channel(transport.socketChannel())
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        dev.ambient.net.PendingReads.install(ch, 1 << 20);
                    }
                })
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .connect(new InetSocketAddress("127.0.92.1", 28200)).addListener((ChannelFutureListener) f -> {
                    if (f.isSuccess()) {
                        request.accept(f.channel(), RelayObserver.NONE);
                    } else {
                        request.reject(503, "backend down");
                    }
                });
    }

    @AfterAll
    static void stop() throws Exception {
        waypoint.close().sync();
        mesh.close();
        transport.close();
    }

    @Test
    void serviceTrafficGoesThroughItsWaypointWithTheVipAsAuthority() throws Exception {
        byte[] payload = "via waypoint".getBytes();
        String echoed = roundTrip(socks(SOCKS_A, "127.0.90.1", "reviews.default.svc.cluster.local", 80), payload);
        assertTrue(seen.contains("spiffe://cluster.local/ns/default/sa/sleep -> 127.0.100.20:80"),
                () -> "the waypoint saw " + seen + "; the ztunnel's failures: " + failures());
        assertEquals(sha256(payload), echoed, () -> "echo through the waypoint; failures: " + failures());
    }

    private static String failures() {
        return nodeA.registry().find("istio_tcp_connections_failed").counters().stream()
                .map(c -> c.getId().getTag("response_flags") + "=" + c.count()).toList().toString();
    }
}
