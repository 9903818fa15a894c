package dev.ambient.xds.security;

import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The packaged service started as a user would, with its serving certificate to come from svc-ca
 * but no mesh root mounted: it must stop at start with a message saying so, never serve plaintext
 * or trust whatever the CA's port presents.
 */
class MissingRootFileIT {

    @Test
    void aMissingRootFileStopsTheStartWithTheReason() throws Exception {
        Path out = Files.createTempFile("xds-missing-root", ".log");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(List.of(java.toString(), "--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow", "-Dquarkus.http.port=57121", "-Dquarkus.management.port=57114",
                "-Dquarkus.grpc.server.port=57110", "-Dxds.debug.port=0", "-Dxds.source=directory",
                "-Dxds.directory=target/discovery-test-empty-mesh", "-Dxds.waypoint.enabled=false",
                "-Dxds.auth.mode=file", "-Dxds.tls.source=ca", "-Dxds.tls.root-cert-file=target/no-such-dir/root-cert.pem",
                "-jar", "target/quarkus-app/quarkus-run.jar"))
                .redirectErrorStream(true).redirectOutput(out.toFile()).start();
        try {
            assertTrue(p.waitFor(90, TimeUnit.SECONDS), "still running:\n" + Files.readString(out));
            String log = Files.readString(out);
            assertNotEquals(0, p.exitValue(), log);
            assertTrue(log.contains("cannot read the mesh root certificate target/no-such-dir/root-cert.pem"), log);
        } finally {
            p.destroyForcibly();
            Files.deleteIfExists(out);
        }
    }
}
