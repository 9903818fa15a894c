package dev.ambient.ztunnel.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ambient.identity.CertificateAuthority;
import dev.ambient.identity.Pem;
import dev.ambient.identity.SpiffeId;
import dev.ambient.identity.WorkloadCertificate;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;

/**
 * {@code src/test/python/hbone_client.py}: an HBONE client on an HTTP/2 stack that is not ours
 * (Debian's python3-h2 with the stdlib ssl module), holding a certificate the test chooses. It sends
 * one CONNECT with its payload as early data and prints one JSON line of what it saw.
 */
public final class HboneClientScript {

    public static final String PYTHON = "/usr/bin/python3";
    static final ObjectMapper JSON = new ObjectMapper();

    /** A certificate chain (leaf first, root last) and key written as PEM files. */
    public record Identity(SpiffeId id, Path chain, Path key) {
    }

    public record Run(int exit, JsonNode json, String stderr) {
        public JsonNode ok() {
            assertEquals(0, exit, "hbone_client.py failed: " + this);
            return json;
        }

        public int status() {
            return ok().get("status").asInt();
        }
    }

    private final Path dir;
    private final Path root;
    private final Path scripts;

    /**
     * @param dir where certificates and logs are written
     * @param root the mesh root certificate the client trusts
     */
    public HboneClientScript(Path dir, Path root) {
        this.dir = dir;
        this.root = root;
        this.scripts = Path.of(System.getProperty("basedir", "")).toAbsolutePath().resolve("src/test/python");
        assertTrue(Files.isRegularFile(scripts.resolve("hbone_client.py")), "scripts not found in " + scripts);
    }

    public Path scripts() {
        return scripts;
    }

    /** Whether /usr/bin/python3 can import h2 (Debian package python3-h2). */
    public static boolean available() {
        try {
            Process p = python(List.of(PYTHON, "-c", "import h2.connection, ssl")).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            if (!p.waitFor(20, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return false;
            }
            return p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** A certificate for {@code spiffe://<td>/ns/<namespace>/sa/<serviceAccount>} issued by {@code authority}. */
    public Identity identity(CertificateAuthority authority, String namespace, String serviceAccount, String fileName)
            throws IOException {
        SpiffeId id = new SpiffeId(authority.trustDomain(), namespace, serviceAccount);
        WorkloadCertificate cert = authority.issue(id, Duration.ofHours(1));
        Path chain = dir.resolve(fileName + "-chain.pem");
        Path key = dir.resolve(fileName + "-key.pem");
        Files.writeString(chain, Pem.encodeCertificates(cert.chain()), StandardCharsets.US_ASCII);
        Files.writeString(key, Pem.encodePrivateKey(cert.privateKey()), StandardCharsets.US_ASCII);
        return new Identity(id, chain, key);
    }

    /** One CONNECT for {@code authority} to the HBONE server at {@code server} (ip:port). */
    public Run connect(Identity who, String server, String authority, int size, String... extra) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(PYTHON, scripts.resolve("hbone_client.py").toString(),
                "--server", server, "--cert", who.chain().toString(), "--key", who.key().toString(),
                "--ca", root.toString(), "--authority", authority, "--size", Integer.toString(size),
                "--timeout", "30"));
        cmd.addAll(List.of(extra));
        Path stderr = Files.createTempFile(dir, "client", ".err");
        Process p = python(cmd).redirectError(stderr.toFile()).start();
        try {
            FutureTask<String> out = new FutureTask<>(
                    () -> new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
            Thread.ofVirtual().start(out);
            if (!p.waitFor(45, TimeUnit.SECONDS)) {
                fail("hbone_client.py did not finish within 45 s: " + cmd + "\n" + Files.readString(stderr));
            }
            String stdout = out.get(5, TimeUnit.SECONDS).strip();
            String err = Files.readString(stderr);
            String last = stdout.isEmpty() ? "" : stdout.substring(stdout.lastIndexOf('\n') + 1);
            if (last.isEmpty()) {
                fail("hbone_client.py printed nothing (exit " + p.exitValue() + "): " + err);
            }
            return new Run(p.exitValue(), JSON.readTree(last), err);
        } finally {
            p.destroyForcibly();
        }
    }

    /**
     * shared-proto's {@code hbone_hostile_client.py} holding {@code who}'s certificate and trusting
     * {@code root}: a mesh peer that abuses an HBONE server, one mode a run.
     */
    public record Hostile(Path script, Path root, Identity who) {

        /**
         * With a certificate for {@code namespace/serviceAccount} from {@code mesh}'s root; null when
         * /usr/bin/python3 cannot import h2.
         */
        public static Hostile of(Path dir, LoopbackMesh mesh, String namespace, String serviceAccount)
                throws IOException {
            if (!available()) {
                return null;
            }
            CertificateAuthority ca = CertificateAuthority.loadOrCreate(mesh.caDir(), "cluster.local",
                    Duration.ofDays(3650));
            Path root = mesh.caDir().resolve(CertificateAuthority.ROOT_CERT_FILE);
            Identity who = new HboneClientScript(dir, root).identity(ca, namespace, serviceAccount, serviceAccount);
            Path script = Path.of(System.getProperty("basedir", "")).toAbsolutePath()
                    .resolve("../shared-proto/src/test/python/hbone_hostile_client.py").normalize();
            assertTrue(Files.isRegularFile(script), "shared-proto's hostile HBONE client: " + script);
            return new Hostile(script, root, who);
        }

        /** {@code --mode mode} against the HBONE server at {@code server} (ip:port); its JSON summary. */
        public JsonNode run(String mode, String server, int timeoutSeconds, String... extra) throws Exception {
            List<String> cmd = new ArrayList<>(List.of(PYTHON, script.toString(), "--mode", mode, "--server", server,
                    "--cert", who.chain().toString(), "--key", who.key().toString(), "--ca", root.toString()));
            cmd.addAll(List.of(extra));
            Process p = python(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
            try {
                String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
                assertTrue(p.waitFor(timeoutSeconds, TimeUnit.SECONDS), "hostile client did not finish: " + cmd);
                return JSON.readTree(out.substring(out.lastIndexOf('\n') + 1));
            } finally {
                p.destroyForcibly();
            }
        }
    }

    static ProcessBuilder python(List<String> cmd) {
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("PYTHONDONTWRITEBYTECODE", "1"); // no __pycache__ in the source tree
        pb.environment().put("PYTHONUNBUFFERED", "1");
        return pb;
    }
}
