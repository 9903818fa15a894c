package dev.ambient.controlplane;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The automatic bounds as the deployed services get them, and configured ones kept as they are. */
class GrpcServerLimitsTest {

    static final long MIB = 1 << 20;

    @Test
    void automaticBoundsFollowTheHeapAndTheDescriptors() {
        // svc-ca as deployed: 512 MiB limit, MaxRAMPercentage=40 -> about 204 MiB of heap
        GrpcServerLimits ca = GrpcServerLimits.DEFAULTS.resolve(1 << 20, 204 * MIB);
        assertEquals(1632, ca.maxConnections());
        assertEquals(816, ca.maxConnectionsPerSource());
        assertEquals(3264, ca.maxCalls());
        assertEquals(1632, ca.maxCallsPerSource());
        assertEquals(408, ca.maxHandshakingConnections());
        assertEquals(102, ca.maxHandshakingConnectionsPerSource());
        assertEquals(Duration.ofMinutes(30), ca.maxConnectionAge());
        assertEquals(Duration.ofSeconds(10), ca.maxConnectionAgeGrace());
        // few descriptors bound the connections, not the calls
        GrpcServerLimits fds = GrpcServerLimits.DEFAULTS.resolve(1024, 1024 * MIB);
        assertEquals(512, fds.maxConnections());
        assertEquals(16384, fds.maxCalls());
        assertEquals(256, fds.maxHandshakingConnections(), "ready and handshaking together leave a quarter of the descriptors");
        // however small the process, some room
        assertEquals(64, GrpcServerLimits.DEFAULTS.resolve(100, 4 * MIB).maxConnections());
        assertEquals(16, GrpcServerLimits.DEFAULTS.resolve(100, 4 * MIB).maxHandshakingConnectionsPerSource());
    }

    @Test
    void configuredBoundsAreKept() {
        GrpcServerLimits configured = new GrpcServerLimits(Duration.ofMinutes(1), 10, 50, Duration.ofSeconds(10), 7, 3,
                9, 2, 5, 1, Duration.ofMinutes(30), Duration.ofSeconds(10)).resolve(1 << 20, 1024 * MIB);
        assertEquals(7, configured.maxConnections());
        assertEquals(3, configured.maxConnectionsPerSource());
        assertEquals(9, configured.maxCalls());
        assertEquals(2, configured.maxCallsPerSource());
        assertEquals(5, configured.maxHandshakingConnections());
        assertEquals(1, configured.maxHandshakingConnectionsPerSource());
        assertThrows(IllegalArgumentException.class, () -> new GrpcServerLimits(Duration.ZERO, 100, 200,
                Duration.ofSeconds(30), 0, 0, 0, 0, 0, 0, Duration.ofMinutes(30), Duration.ofSeconds(10)));
        assertThrows(IllegalArgumentException.class, () -> new GrpcServerLimits(Duration.ofMinutes(5), 100, 200,
                Duration.ofMillis(500), 0, 0, 0, 0, 0, 0, Duration.ofMinutes(30), Duration.ofSeconds(10)));
    }
}
