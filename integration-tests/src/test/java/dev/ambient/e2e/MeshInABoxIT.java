package dev.ambient.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The README's main command, end to end: meshbox starts svc-ca, svc-xds (reading Istio-format
 * YAML), two ztunnels and real HTTP servers as pods; a client pod's requests are carried over
 * mTLS with identities the CA issued, policy from the YAML applies, and edits apply live.
 */
class MeshInABoxIT {

    static final Path REPO = Path.of("..").toAbsolutePath().normalize();
    static final Path STATE = Path.of("target", "meshbox").toAbsolutePath();
    static final InetSocketAddress SOCKS_NODE_A = new InetSocketAddress("127.0.0.2", 15080);

    @BeforeAll
    static void up() throws Exception {
        meshbox("down");
        int rc = meshbox("up");
        assertEquals(0, rc, "meshbox up failed; see " + STATE + " and target/meshbox-up.log");
    }

    @AfterAll
    static void down() throws Exception {
        meshbox("down");
    }

    static int meshbox(String verb) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(REPO.resolve("integration-tests/meshbox/meshbox").toString(), verb)
                .redirectErrorStream(true)
                .redirectOutput(Path.of("target", "meshbox-" + verb + ".log").toFile());
        pb.environment().put("MESHBOX_DIR", STATE.toString());
        pb.environment().put("MESHBOX_SKIP_BUILD", "1");
        Process p = pb.start();
        if (!p.waitFor(4, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            return -1;
        }
        return p.exitValue();
    }

    /** An HTTP/1.0 GET through node-a's SOCKS5 from a pod's address; the response body. */
    static String get(String sourcePodIp, String host, int port) throws IOException {
        try (Socket s = new Socket(new Proxy(Proxy.Type.SOCKS, SOCKS_NODE_A))) {
            s.setSoTimeout(10_000);
            s.bind(new InetSocketAddress(sourcePodIp, 0));
            s.connect(InetSocketAddress.createUnresolved(host, port), 10_000);
            OutputStream out = s.getOutputStream();
            out.write(("GET / HTTP/1.0\r\nHost: " + host + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = s.getInputStream();
            String response = new String(in.readAllBytes(), StandardCharsets.US_ASCII);
            return response.substring(response.indexOf("\r\n\r\n") + 4).trim();
        }
    }

    @Test
    void serviceTrafficReachesBothVersionsOverTheMesh() throws Exception {
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < 30; i++) {
            seen.add(get("127.0.10.1", "httpbin.default.svc.cluster.local", 80));
        }
        assertEquals(Set.of("hello from httpbin-v1", "hello from httpbin-v2"), seen);
    }

    @Test
    void metricsCarryTheIdentitiesTheCaIssued() throws Exception {
        get("127.0.10.1", "127.0.20.1", 8080);
        String metrics = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                URI.create("http://127.0.0.3:15020/metrics")).header("Accept", "text/plain").build(),
                HttpResponse.BodyHandlers.ofString()).body();
        assertTrue(metrics.lines().anyMatch(l -> l.startsWith("istio_tcp_connections_opened_total{")
                && l.contains("reporter=\"destination\"")
                && l.contains("source_principal=\"spiffe://cluster.local/ns/default/sa/sleep\"")
                && l.contains("connection_security_policy=\"mutual_tls\"")), "node-b reports the mTLS connection");
        String ca = Files.readString(STATE.resolve("ca.log"));
        assertTrue(ca.contains("issued spiffe://cluster.local/ns/default/sa/httpbin"), "the CA issued httpbin's identity");
    }

    @Test
    void policyFromIstioYamlDeniesAndEditsApplyLive() throws Exception {
        assertThrows(IOException.class, () -> get("127.0.10.2", "127.0.20.1", 8080), "legacy is denied");
        Path policies = STATE.resolve("samples/policies.yaml");
        String original = Files.readString(policies);
        try {
            Files.writeString(policies, original.replace("[\"legacy\"]", "[\"legacy\", \"default\"]"));
            await(() -> {
                try {
                    get("127.0.10.1", "127.0.20.1", 8080);
                    return false;
                } catch (IOException denied) {
                    return true;
                }
            });
        } finally {
            Files.writeString(policies, original);
        }
        await(() -> {
            try {
                return get("127.0.10.1", "127.0.20.1", 8080).startsWith("hello");
            } catch (IOException stillDenied) {
                return false;
            }
        });
    }

    static void await(Callable<Boolean> c) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (System.nanoTime() < deadline) {
            if (c.call()) {
                return;
            }
            Thread.sleep(200);
        }
        throw new AssertionError("not within 20 s");
    }
}
