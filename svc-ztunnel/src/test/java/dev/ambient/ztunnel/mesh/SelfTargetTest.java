package dev.ambient.ztunnel.mesh;

import static dev.ambient.ztunnel.mesh.LoopbackMesh.roundTrip;
import static dev.ambient.ztunnel.mesh.LoopbackMesh.sha256;
import static dev.ambient.ztunnel.mesh.LoopbackMesh.socks;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.identity.CertificateAuthority;
import dev.ambient.ztunnel.GoodTraffic;
import dev.ambient.ztunnel.LogCapture;
import dev.ambient.ztunnel.OpenFiles;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Shared mode: no destination a client names may make the ztunnel dial one of its own listeners.
 * An HBONE CONNECT naming the workload's HBONE, capture or plaintext port is answered 400; SOCKS5
 * (or capture) to the ztunnel's SOCKS5, capture, admin or HBONE listeners is refused. Each refusal
 * is logged with its reason, the process's file descriptors stay flat, and a good client's traffic
 * keeps flowing while it happens.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SelfTargetTest {

    static final String MESH = """
            workloads:
            - name: sleep
              namespace: default
              serviceAccount: sleep
              workloadIps: [127.0.60.1]
              node: node-a
              protocol: HBONE
            - name: echo
              namespace: default
              serviceAccount: echo
              workloadIps: [127.0.61.1]
              node: node-b
              protocol: HBONE
            """;

    static final InetSocketAddress SOCKS_A = new InetSocketAddress("127.0.0.60", 25480);
    static final String SLEEP = "127.0.60.1";
    static final String ECHO_IP = "127.0.61.1";
    static final int ECHO_PORT = 28480;
    static final int CAPTURE = 25401;
    static final int PLAINTEXT = 25406;
    static final int ADMIN = 25400;

    @TempDir
    static Path dir;
    static LoopbackMesh mesh;
    static HboneClientScript script;
    static HboneClientScript.Identity sleepCert;

    @BeforeAll
    static void start() throws Exception {
        mesh = new LoopbackMesh(dir, MESH);
        mesh.echo(ECHO_IP, ECHO_PORT);
        // Both nodes listen on the capture ports, each on its node address.
        mesh.node("node-a", SOCKS_A.getHostString(), SOCKS_A.getPort(), listeners(SOCKS_A.getHostString()));
        mesh.node("node-b", "127.0.0.61", 25481, listeners("127.0.0.61"));
        if (HboneClientScript.available()) {
            CertificateAuthority ca = CertificateAuthority.loadOrCreate(mesh.caDir(), "cluster.local",
                    Duration.ofDays(3650));
            script = new HboneClientScript(dir, mesh.caDir().resolve(CertificateAuthority.ROOT_CERT_FILE));
            sleepCert = script.identity(ca, "default", "sleep", "sleep");
        }
    }

    static Map<String, String> listeners(String captureAddress) {
        return Map.of("ztunnel.ports.outbound-capture", Integer.toString(CAPTURE), "ztunnel.ports.inbound-plaintext",
                Integer.toString(PLAINTEXT), "ztunnel.ports.capture-address", captureAddress, "ztunnel.ports.admin",
                Integer.toString(ADMIN));
    }

    @AfterAll
    static void stop() throws Exception {
        if (mesh != null) {
            mesh.close();
        }
    }

    /** The attack seen in the issue: CONNECT to the workload's own HBONE listener opened a tunnel. */
    @Test
    void connectNamingTheZtunnelsOwnPortsIsAnswered400() throws Exception {
        Assumptions.assumeTrue(script != null, "/usr/bin/python3 cannot import h2");
        String hbone = ECHO_IP + ":" + LoopbackMesh.HBONE_PORT;
        try (LogCapture log = LogCapture.accessLog()) {
            for (int port : List.of(LoopbackMesh.HBONE_PORT, CAPTURE, PLAINTEXT)) {
                String authority = ECHO_IP + ":" + port;
                HboneClientScript.Run r = script.connect(sleepCert, hbone, authority, 100, "--source", SLEEP);
                assertEquals(400, r.status(), "CONNECT " + authority + ": " + r);
                assertEquals(0, r.ok().get("received_bytes").asInt(), r.toString());
                String line = log.await("refusing " + authority, l -> l.contains("dst=" + authority)
                        && l.contains("refused 400"));
                assertTrue(line.contains("own") && line.contains("listener"), "the reason names the self-target: " + line);
            }
        }
        HboneClientScript.Run good = script.connect(sleepCert, hbone, ECHO_IP + ":" + ECHO_PORT, 1000);
        assertEquals(200, good.status(), "a good CONNECT still works: " + good);
    }

    /** SOCKS5 (as the capture listener) to the ztunnel's own listeners: never dialled. */
    @Test
    void outboundToTheZtunnelsOwnListenersIsRefused() throws Exception {
        List<InetSocketAddress> own = List.of(SOCKS_A, // SOCKS5 itself
                new InetSocketAddress(SOCKS_A.getHostString(), CAPTURE), // the capture listeners
                new InetSocketAddress(SOCKS_A.getHostString(), PLAINTEXT),
                new InetSocketAddress("127.0.0.1", ADMIN), // admin would leak the config dump
                new InetSocketAddress(SLEEP, LoopbackMesh.HBONE_PORT)); // the source's own HBONE listener
        try (LogCapture log = LogCapture.accessLog()) {
            for (InetSocketAddress target : own) {
                String dst = target.getHostString() + ":" + target.getPort();
                assertThrows(IOException.class, () -> socks(SOCKS_A, SLEEP, target.getHostString(),
                        target.getPort()).close(), "SOCKS5 to " + dst + " must be refused");
                String line = log.await("refusing " + dst, l -> l.startsWith("outbound") && l.contains("dst=" + dst)
                        && l.contains("own"));
                assertTrue(line.contains("outcome=failed") || line.contains("outcome=refused"), line);
            }
        }
        byte[] payload = "still fine".getBytes();
        assertEquals(sha256(payload), roundTrip(socks(SOCKS_A, SLEEP, ECHO_IP, ECHO_PORT), payload));
    }

    /** Many self-targets in a row: no socket is left behind, and a good client is never disturbed. */
    @Test
    void selfTargetsLeaveFileDescriptorsFlatWhileOtherTrafficFlows() throws Exception {
        byte[] payload = "good client".getBytes();
        String expected = sha256(payload);
        long before = OpenFiles.count();
        GoodTraffic.Stats good;
        long peak;
        int attacks = 0;
        try (OpenFiles.Peak sampler = new OpenFiles.Peak()) {
            GoodTraffic traffic = new GoodTraffic("sleep-echo",
                    () -> expected.equals(roundTrip(socks(SOCKS_A, SLEEP, ECHO_IP, ECHO_PORT), payload)));
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(3);
            while (System.nanoTime() < end) {
                for (InetSocketAddress target : List.of(SOCKS_A, new InetSocketAddress(SLEEP,
                        LoopbackMesh.HBONE_PORT), new InetSocketAddress(ECHO_IP, LoopbackMesh.HBONE_PORT),
                        new InetSocketAddress(SOCKS_A.getHostString(), CAPTURE))) {
                    try {
                        socks(SOCKS_A, SLEEP, target.getHostString(), target.getPort()).close();
                    } catch (IOException refused) {
                        // expected
                    }
                    attacks++;
                }
            }
            good = traffic.stop();
            Thread.sleep(500);
            peak = sampler.peak();
        }
        long after = OpenFiles.count();
        System.out.printf("shared-mode self-targets: %d attacks in 3 s; open fds before %d, peak %d, after %d;"
                + " good client sleep->echo meanwhile: %s%n", attacks, before, peak, after, good);
        assertTrue(after - before < 50, "fds must stay flat: before " + before + ", after " + after);
        assertTrue(peak - before < 200, "no burst of sockets: before " + before + ", peak " + peak);
        assertEquals(0, good.failed(), "the good client never failed: " + good);
        assertTrue(good.ok() > 0, good.toString());
    }
}
