package dev.ambient.hbone;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the hostile-client tests share: python-h2 must be there (else they are skipped, not
 * failed), each test starts its own {@link HboneTestServer} in {@link #server}, stopped after it.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
abstract class HostileClientFixture {

    @TempDir
    Path dir;
    HboneTestServer server;

    @BeforeAll
    static void python() {
        Assumptions.assumeTrue(HostileClient.available(), "/usr/bin/python3 cannot import h2 (python3-h2)");
    }

    @AfterEach
    void stop() {
        if (server != null) {
            server.close();
        }
    }
}
