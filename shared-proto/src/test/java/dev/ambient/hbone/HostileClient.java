package dev.ambient.hbone;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;

/**
 * Runs {@code src/test/python/hbone_hostile_client.py} (python-h2, OpenSSL: an HTTP/2 stack that is
 * not ours) against an {@link HboneTestServer}, with the test client's valid mesh certificate.
 */
final class HostileClient {

    static final String PYTHON = "/usr/bin/python3";

    private HostileClient() {
    }

    static boolean available() {
        try {
            Process p = new ProcessBuilder(PYTHON, "-c", "import h2.connection, ssl").redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            return p.waitFor(20, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    static Path script() {
        Path script = Path.of(System.getProperty("basedir", "")).toAbsolutePath()
                .resolve("src/test/python/hbone_hostile_client.py");
        assertTrue(Files.isRegularFile(script), "script not found: " + script);
        return script;
    }

    /** Runs one mode to its end; returns its JSON report. */
    static JsonObject run(HboneTestServer server, String mode, String... extra) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(PYTHON, script().toString(), "--mode", mode,
                "--server", "127.0.0.1:" + server.address.getPort(), "--cert", server.clientChain.toString(),
                "--key", server.clientKey.toString(), "--ca", server.root.toString(),
                "--authority", server.authority()));
        cmd.addAll(List.of(extra));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("PYTHONDONTWRITEBYTECODE", "1");
        Process p = pb.redirectError(ProcessBuilder.Redirect.PIPE).start();
        try {
            FutureTask<String> out = new FutureTask<>(
                    () -> new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
            FutureTask<String> err = new FutureTask<>(
                    () -> new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8));
            Thread.ofVirtual().start(out);
            Thread.ofVirtual().start(err);
            if (!p.waitFor(90, TimeUnit.SECONDS)) {
                fail("hbone_hostile_client.py " + mode + " did not finish within 90 s");
            }
            String stdout = out.get(5, TimeUnit.SECONDS).strip();
            if (stdout.isEmpty()) {
                fail("hbone_hostile_client.py " + mode + " printed nothing: " + err.get(5, TimeUnit.SECONDS));
            }
            return new JsonObject(stdout.substring(stdout.lastIndexOf('\n') + 1));
        } finally {
            p.destroyForcibly();
        }
    }

    /** Several clients of one mode at once. */
    static List<JsonObject> runMany(HboneTestServer server, int count, String mode, String... extra)
            throws Exception {
        List<FutureTask<JsonObject>> runs = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            FutureTask<JsonObject> run = new FutureTask<>(() -> run(server, mode, extra));
            Thread.ofVirtual().start(run);
            runs.add(run);
        }
        List<JsonObject> results = new ArrayList<>();
        for (FutureTask<JsonObject> run : runs) {
            results.add(run.get(120, TimeUnit.SECONDS));
        }
        return results;
    }
}
