package dev.ambient.ztunnel.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A mesh peer whose HTTP/2 stack is not ours (python-h2, shared-proto's hostile client in mode
 * upload-then-reset) ends each upload as such peers may (RFC 9113 8.1): END_STREAM, then at once
 * RST_STREAM(NO_ERROR). That is a clean end: every byte must reach the application, then a FIN.
 * Several connections at once, several tunnels each, so some resets arrive before the ztunnel's
 * inbound has attached its relay to the stream (they are held until then, with the DATA frames
 * still queued behind them); the application records what each connection got and how it ended.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class HboneUploadThenResetTest {

    static final String MESH = """
            workloads:
            - name: uploader
              namespace: default
              serviceAccount: uploader
              workloadIps: [127.0.28.1]
              node: node-a
              protocol: HBONE
            - name: app
              namespace: default
              serviceAccount: app
              workloadIps: [127.0.29.1]
              node: node-b
              protocol: HBONE
            """;
    static final String CLIENT_IP = "127.0.28.1";
    static final String APP_IP = "127.0.29.1";
    static final int APP_PORT = 28590;
    static final int CONNECTIONS = 12;
    static final int TUNNELS = 4;
    static final int PAYLOAD = 16 * 1024;
    static final int ROUNDS = 2;

    @TempDir
    static Path dir;
    static LoopbackMesh mesh;
    static HboneClientScript.Hostile uploader;
    static ServerSocket app;
    /** What the application saw, one entry per connection, once it ended. */
    static final List<Received> received = new CopyOnWriteArrayList<>();

    /** One connection to the application: its bytes' SHA-256, how many, and whether it ended with EOF (else a reset). */
    record Received(String sha256, long bytes, boolean eof, String error) {
    }

    @BeforeAll
    static void start() throws Exception {
        mesh = new LoopbackMesh(dir, MESH);
        app = recordingApplication(new InetSocketAddress(APP_IP, APP_PORT));
        mesh.node("node-b", "127.0.0.85", 25384);
        uploader = HboneClientScript.Hostile.of(dir, mesh, "default", "uploader");
    }

    @AfterAll
    static void stop() throws Exception {
        if (app != null) {
            app.close();
        }
        if (mesh != null) {
            mesh.close();
        }
    }

    static ServerSocket recordingApplication(InetSocketAddress address) throws IOException {
        ServerSocket server = new ServerSocket();
        server.setReuseAddress(true);
        server.bind(address, 1024);
        Thread.ofVirtual().start(() -> {
            while (!server.isClosed()) {
                try {
                    Socket s = server.accept();
                    Thread.ofVirtual().start(() -> received.add(readAll(s)));
                } catch (IOException e) {
                    return;
                }
            }
        });
        return server;
    }

    private static Received readAll(Socket s) {
        try (s; InputStream in = s.getInputStream()) {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[8192];
            long n = 0;
            try {
                for (int r; (r = in.read(buf)) >= 0; ) {
                    sha.update(buf, 0, r);
                    n += r;
                }
            } catch (IOException e) {
                return new Received(HexFormat.of().formatHex(sha.digest()), n, false, e.getMessage());
            }
            return new Received(HexFormat.of().formatHex(sha.digest()), n, true, null);
        } catch (Exception e) {
            return new Received("", -1, false, e.toString());
        }
    }

    @Test
    void everyUploadEndedWithEndStreamAndResetReachesTheApplicationWholeThenEof() throws Exception {
        Assumptions.assumeTrue(uploader != null, "/usr/bin/python3 cannot import h2");
        String expected = null;
        long sent = 0;
        for (int round = 0; round < ROUNDS; round++) {
            List<JsonNode> clients = uploadAtOnce();
            for (JsonNode c : clients) {
                assertEquals(TUNNELS, c.path("sent_streams").asInt(), "every CONNECT answered: " + c);
                sent += c.path("sent_bytes").asLong();
                expected = c.path("sent_sha256").asText();
            }
        }
        int tunnels = ROUNDS * CONNECTIONS * TUNNELS;
        assertEquals((long) tunnels * PAYLOAD, sent, "the clients sent it all");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (received.size() < tunnels && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        final String whole = expected;
        List<Received> bad = received.stream().filter(r -> !r.eof() || r.bytes() != PAYLOAD || !whole.equals(r.sha256()))
                .toList();
        Map<String, Integer> outcomes = new TreeMap<>();
        bad.forEach(r -> outcomes.merge((r.eof() ? "eof" : "reset") + " after " + r.bytes() + " bytes", 1, Integer::sum));
        System.out.printf("%d uploads of %d bytes, each ended with END_STREAM + RST_STREAM(NO_ERROR) (%d connections x %d"
                + " tunnels, %d rounds): the application saw %d connections, %d whole then EOF; the others: %s%n",
                tunnels, PAYLOAD, CONNECTIONS, TUNNELS, ROUNDS, received.size(), received.size() - bad.size(), outcomes);
        assertEquals(tunnels, received.size(), "every tunnel reached the application and ended");
        assertTrue(bad.isEmpty(), bad.size() + " of " + tunnels + " uploads lost or cut: " + outcomes);
    }

    /** CONNECTIONS hostile clients at once, each TUNNELS uploads one after another on its connection. */
    private static List<JsonNode> uploadAtOnce() throws Exception {
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<JsonNode>> runs = new ArrayList<>();
            for (int i = 0; i < CONNECTIONS; i++) {
                runs.add(pool.submit(() -> uploader.run("upload-then-reset", APP_IP + ":" + LoopbackMesh.HBONE_PORT, 60,
                        "--authority", APP_IP + ":" + APP_PORT, "--source", CLIENT_IP, "--tunnels",
                        Integer.toString(TUNNELS), "--payload", Integer.toString(PAYLOAD), "--wait", "0.5")));
            }
            List<JsonNode> out = new ArrayList<>();
            for (Future<JsonNode> f : runs) {
                out.add(f.get());
            }
            return out;
        }
    }
}
