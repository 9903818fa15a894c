package dev.ambient.ztunnel.mesh;

import static dev.ambient.ztunnel.mesh.LoopbackMesh.roundTrip;
import static dev.ambient.ztunnel.mesh.LoopbackMesh.sha256;
import static dev.ambient.ztunnel.mesh.LoopbackMesh.socks;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.hbone.HboneConnector;
import dev.ambient.hbone.HboneException;
import dev.ambient.hbone.HboneHeaders;
import dev.ambient.hbone.HboneSettings;
import dev.ambient.identity.CertificateAuthority;
import dev.ambient.identity.CertificateRequests;
import dev.ambient.identity.HboneTls;
import dev.ambient.identity.SpiffeId;
import dev.ambient.identity.WorkloadCertificate;
import dev.ambient.net.Transport;
import dev.ambient.ztunnel.ZtunnelNode;
import io.netty.util.concurrent.Future;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.security.KeyPair;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a ztunnel refuses on 15008, and how our client refuses a server: expired certificates,
 * foreign roots, the wrong identity, an upstream that does not answer; and certificate renewal
 * that does not disturb open connections.
 */
class HboneRefusalTest {

    static final String MESH = """
            workloads:
            - name: sleep
              namespace: default
              serviceAccount: sleep
              workloadIps: [127.0.80.1]
              node: node-a
              protocol: HBONE
            - name: echo
              namespace: default
              serviceAccount: echo
              workloadIps: [127.0.81.1]
              node: node-b
              protocol: HBONE
            """;

    static final SpiffeId SLEEP = new SpiffeId("cluster.local", "default", "sleep");
    static final SpiffeId ECHO = new SpiffeId("cluster.local", "default", "echo");
    static final InetSocketAddress ECHO_HBONE = new InetSocketAddress("127.0.81.1", LoopbackMesh.HBONE_PORT);
    static final InetSocketAddress SOCKS_A = new InetSocketAddress("127.0.0.8", 25280);

    @TempDir
    static Path dir;
    static LoopbackMesh mesh;
    static ZtunnelNode nodeA;
    static ZtunnelNode nodeB;
    static Transport transport;
    static HboneConnector connector;
    static CertificateAuthority ca;

    @BeforeAll
    static void start() throws Exception {
        mesh = new LoopbackMesh(dir, MESH);
        mesh.echo("127.0.81.1", 28100);
        // Short-lived certificates: renewed every couple of seconds while the tests run.
        Map<String, String> shortLived = Map.of("ztunnel.identity.certificate-lifetime", "4s");
        nodeA = mesh.node("node-a", "127.0.0.8", SOCKS_A.getPort(), shortLived);
        nodeB = mesh.node("node-b", "127.0.0.9", 0, shortLived);
        ca = CertificateAuthority.loadOrCreate(mesh.caDir(), "cluster.local", Duration.ofDays(1));
        transport = Transport.create("test-client", 1);
        connector = new HboneConnector(transport, HboneSettings.DEFAULTS, 2_000, 0);
        TwoNodeMeshTest.awaitTrue(() -> !nodeB.inbound().listening().isEmpty()
                && nodeB.certificates().status().stream().allMatch(s -> "valid".equals(s.state())));
    }

    @AfterAll
    static void stop() throws Exception {
        mesh.close();
        transport.close();
    }

    private static Throwable connectFailure(WorkloadCertificate clientCert, Set<SpiffeId> expected,
            CertificateAuthority trust) {
        var tls = HboneTls.clientContext(clientCert, java.util.List.of(trust.root()));
        Future<?> f = connector.connect(ECHO_HBONE, tls, expected, transport.group().next(), null)
                .awaitUninterruptibly();
        return f.cause();
    }

    @Test
    void expiredClientCertificateFailsTheHandshake() {
        KeyPair keys = CertificateRequests.newKeyPair();
        Instant past = Instant.now().minus(Duration.ofHours(2));
        var chain = ca.sign(keys.getPublic(), SLEEP, past, past.plus(Duration.ofHours(1)));
        Throwable cause = connectFailure(new WorkloadCertificate(SLEEP, keys.getPrivate(), chain), Set.of(ECHO), ca);
        assertTrue(cause instanceof HboneException, String.valueOf(cause));
        // The server's alert (certificate_expired) is reported when it arrives before the close.
        assertTrue(cause.getMessage().toLowerCase().contains("expired")
                || cause.getMessage().contains("before HTTP/2 SETTINGS"),
                cause.getMessage());
    }

    @Test
    void certificateFromAnotherRootFailsTheHandshake() {
        CertificateAuthority stranger = CertificateAuthority.create("cluster.local", Duration.ofDays(1));
        Throwable cause = connectFailure(stranger.issue(SLEEP, Duration.ofHours(1)), Set.of(ECHO), ca);
        assertTrue(cause instanceof HboneException, String.valueOf(cause));
    }

    @Test
    void serverWithAnUnexpectedIdentityIsRefusedByTheClient() {
        SpiffeId other = new SpiffeId("cluster.local", "default", "payments");
        Throwable cause = connectFailure(ca.issue(SLEEP, Duration.ofHours(1)), Set.of(other), ca);
        assertTrue(cause instanceof HboneException he && he.getMessage().contains("expected one of"),
                String.valueOf(cause));
    }

    @Test
    void workloadThatDoesNotAnswerGets503() throws Exception {
        var tls = HboneTls.clientContext(ca.issue(SLEEP, Duration.ofHours(1)), java.util.List.of(ca.root()));
        var connection = connector.connect(ECHO_HBONE, tls, Set.of(ECHO), transport.group().next(), null)
                .get(5, TimeUnit.SECONDS);
        try {
            // Nothing listens on port 28199 of the echo workload.
            var stream = connection.open(HboneHeaders.connect(new InetSocketAddress("127.0.81.1", 28199), null, null))
                    .awaitUninterruptibly();
            assertTrue(stream.cause() instanceof HboneException he && he.status() == 503, String.valueOf(stream.cause()));
            // The connection survives a refused stream and carries the next one.
            var ok = connection.open(HboneHeaders.connect(new InetSocketAddress("127.0.81.1", 28100), null, null))
                    .awaitUninterruptibly();
            assertTrue(ok.isSuccess(), String.valueOf(ok.cause()));
            ok.getNow().close();
        } finally {
            connection.close();
        }
    }

    @Test
    void renewalKeepsOpenConnectionsAndServesNewOnes() throws Exception {
        String serialBefore = serial(nodeB);
        try (Socket s = socks(SOCKS_A, "127.0.80.1", "127.0.81.1", 28100)) {
            OutputStream out = s.getOutputStream();
            InputStream in = s.getInputStream();
            byte[] chunk = new byte[1024];
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(6);
            int rounds = 0;
            // One connection, kept busy across several renewals of both ends' certificates.
            while (System.nanoTime() < deadline) {
                chunk[0] = (byte) rounds;
                out.write(chunk);
                byte[] back = in.readNBytes(chunk.length);
                assertEquals(chunk[0], back[0]);
                rounds++;
                Thread.sleep(50);
            }
            assertTrue(rounds > 50);
        }
        assertNotEquals(serialBefore, serial(nodeB), "node-b renewed its certificate meanwhile");
        byte[] payload = "after renewal".getBytes();
        // New connections use the renewed certificates (the pool may still hold the old
        // connection; a fresh one is made once it idles out, and either way traffic flows).
        assertEquals(sha256(payload), roundTrip(socks(SOCKS_A, "127.0.80.1", "127.0.81.1", 28100), payload));
    }

    private static String serial(ZtunnelNode node) {
        return node.certificates().status().stream().filter(st -> st.identity().equals(ECHO.uri()))
                .findFirst().orElseThrow().serial();
    }
}
