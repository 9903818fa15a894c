package dev.ambient.xds;

import dev.ambient.identity.CertificateAuthority;
import dev.ambient.identity.Pem;
import dev.ambient.identity.ServingCertificate;
import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * What the test applications need before they start (every test, with {@code %test} or the
 * packaged jar's arguments): a mesh root, svc-xds's serving certificate from it for its Service
 * names, and the token file of its clients, all under {@link #DIR}. Tests add the tokens of the
 * clients they play with {@link #grant}.
 */
public class XdsTestTls implements QuarkusTestResourceLifecycleManager {

    public static final Path DIR = Path.of("target/xds-test-tls");
    public static final Path ROOT = DIR.resolve("root-cert.pem");
    public static final Path TOKENS = DIR.resolve("tokens.txt");
    public static final String SERVER_NAME = "xds.istio-system.svc";

    @Override
    public Map<String, String> start() {
        write();
        return Map.of();
    }

    /** Writes a fresh root, serving certificate and an empty token file (once per test application). */
    static synchronized void write() {
        try {
            Files.createDirectories(DIR);
            CertificateAuthority mesh = CertificateAuthority.create("cluster.local", Duration.ofDays(1));
            ServingCertificate cert = mesh.issueServer(List.of(SERVER_NAME, "xds.istio-system.svc.cluster.local"),
                    Duration.ofHours(12));
            Files.writeString(DIR.resolve("key.pem"), Pem.encodePrivateKey(cert.privateKey()));
            Files.writeString(DIR.resolve("cert.pem"), Pem.encodeCertificates(cert.chain()));
            Files.writeString(ROOT, Pem.encodeCertificate(mesh.root()));
            if (!Files.exists(TOKENS)) {
                Files.writeString(TOKENS, "# token namespace serviceaccount [node]: written by the tests\n");
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Lists {@code token} as the token of {@code namespace/serviceAccount} (of {@code node}, if given). */
    public static synchronized String grant(String token, String namespace, String serviceAccount, String node) {
        try {
            String line = token + " " + namespace + " " + serviceAccount + (node == null ? "" : " " + node);
            if (!Files.readAllLines(TOKENS, StandardCharsets.UTF_8).contains(line)) {
                Files.writeString(TOKENS, line + "\n", StandardOpenOption.APPEND);
            }
            return token;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The token of the ztunnel of {@code node}. */
    public static String ztunnelToken(String node) {
        return grant("ztunnel-" + node, "istio-system", "ztunnel", node);
    }

    /** The token of the waypoint of Gateway {@code namespace/name} (its account is the Gateway's name). */
    public static String waypointToken(String gateway) {
        String[] parts = gateway.split("/", 2);
        return grant("waypoint-" + parts[0] + "-" + parts[1], parts[0], parts[1], null);
    }

    @Override
    public void stop() {
    }
}
