package dev.ambient.controlplane;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vertx.core.json.JsonObject;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A hostile peer of a control-plane gRPC port (svc-ca, svc-xds; this module's test jar): runs
 * {@code src/test/python/grpc_hostile_peer.py}, python-h2 over Python's TLS, so the wire is judged
 * by an HTTP/2 stack that is not ours. Each attack prints JSON lines; the last is its report.
 *
 * @param methodPath the gRPC method its calls name, {@code /package.Service/Method}
 * @param sourceIp the loopback address its connections come from (another "pod" than the good client's)
 */
public record HostileGrpcPeer(int port, String serverName, String methodPath, String sourceIp) {

    static final String PYTHON = "/usr/bin/python3";

    /** A running attack: its progress lines, then its report. */
    public static final class Running implements AutoCloseable {
        private final Process process;
        private final BufferedReader out;
        private final String what;

        Running(Process process, String what) {
            this.process = process;
            this.out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
            this.what = what;
        }

        /** The next line the attack prints (the {@code connections} attack says {@code opened} first). */
        public JsonObject nextLine() throws IOException {
            String line = out.readLine();
            if (line == null) {
                fail(what + " printed nothing more: "
                        + new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8));
            }
            return new JsonObject(line);
        }

        /** Its report: the last line, once it ended. */
        public JsonObject report() throws Exception {
            List<String> lines = new ArrayList<>();
            for (String line; (line = out.readLine()) != null; ) {
                lines.add(line);
            }
            if (!process.waitFor(90, TimeUnit.SECONDS)) {
                fail(what + " did not finish within 90 s");
            }
            if (lines.isEmpty()) {
                fail(what + " printed no report: "
                        + new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8));
            }
            JsonObject report = new JsonObject(lines.getLast());
            System.out.println(what + ": " + report);
            return report;
        }

        @Override
        public void close() {
            process.destroyForcibly();
        }
    }

    /** Judges a {@link #streams} report: the server advertised {@code maxCalls} and held no more. */
    public static void assertAtMostCallsHeld(JsonObject report, int maxCalls) {
        assertEquals(maxCalls, report.getInteger("max_concurrent_streams"), report.toString());
        assertTrue(report.getInteger("open_unanswered") <= maxCalls, report.toString());
    }

    /** Judges a {@link #rapidReset} report: GOAWAY(ENHANCE_YOUR_CALM) long before the flood's end. */
    public static void assertToldToCalmDown(JsonObject report) {
        JsonObject goaway = report.getJsonObject("goaway");
        assertNotNull(goaway, "the flood went on: " + report);
        assertEquals(11, goaway.getInteger("code"), report.toString()); // ENHANCE_YOUR_CALM
        assertTrue(report.getInteger("sent") <= 2_000, report.toString());
    }

    /** N connections that finish TLS, then send nothing ({@code preface=false}) or only the HTTP/2 preface. */
    public Running connections(int n, boolean preface, int holdSeconds) {
        return start("connections", String.valueOf(n), preface ? "preface" : "silent", String.valueOf(holdSeconds));
    }

    /** N TCP connections that send one byte of a ClientHello, then nothing: never past TLS. */
    public Running tcp(int n, int holdSeconds) {
        return start("tcp", String.valueOf(n), String.valueOf(holdSeconds));
    }

    /** N gRPC calls on one connection that never send a message; {@code token} "-" for none. */
    public Running streams(int n, String token, int holdSeconds) {
        return start("streams", String.valueOf(n), methodPath, token, String.valueOf(holdSeconds));
    }

    /** Up to N HEADERS+RST_STREAM pairs on one connection (CVE-2023-44487). */
    public Running rapidReset(int n, String token) {
        return start("rapid-reset", String.valueOf(n), methodPath, token);
    }

    /** One call whose headers carry {@code bytes} bytes more. */
    public Running bigHeaders(int bytes, String token) {
        return start("big-headers", String.valueOf(bytes), methodPath, token);
    }

    private Running start(String attack, String... args) {
        Path script = Path.of(System.getProperty("basedir", "")).toAbsolutePath()
                .resolve("../shared-proto/src/test/python/grpc_hostile_peer.py").normalize();
        assertTrue(Files.isRegularFile(script), "script not found: " + script);
        List<String> cmd = new ArrayList<>(List.of(PYTHON, script.toString(), "127.0.0.1", String.valueOf(port),
                serverName, attack));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("PYTHONDONTWRITEBYTECODE", "1");
        pb.environment().put("SOURCE_IP", sourceIp);
        try {
            return new Running(pb.start(), "grpc_hostile_peer.py " + attack + " " + String.join(" ", args));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
