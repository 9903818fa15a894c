package dev.ambient.hbone;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.quarkus.runtime.configuration.DurationConverter;
import io.smallrye.config.ConfigMapping;
import io.smallrye.config.PropertiesConfigSource;
import io.smallrye.config.SmallRyeConfig;
import io.smallrye.config.SmallRyeConfigBuilder;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The configuration keys of the limits map onto {@link HboneLimits} and {@link HboneAdmission.Limits},
 * with the same defaults; the automatic bounds resolve as documented.
 */
class HboneLimitsConfigTest {

    @ConfigMapping(prefix = "svc")
    interface Root {
        HboneLimitsConfig limits();
    }

    private static HboneLimitsConfig config(Map<String, String> properties) {
        // Quarkus's converter, for "10s" and "5m" as the services read them
        SmallRyeConfig config = new SmallRyeConfigBuilder().withMapping(Root.class)
                .withConverter(Duration.class, 100, new DurationConverter())
                .withSources(new PropertiesConfigSource(properties, "test", 100)).build();
        return config.getConfigMapping(Root.class).limits();
    }

    private static HboneLimits load(Map<String, String> properties) {
        return config(properties).toLimits();
    }

    @Test
    void defaultsOfTheKeysAreTheRecordsDefaults() {
        assertEquals(HboneLimits.DEFAULTS, load(Map.of()));
    }

    @Test
    void eachKeyReachesItsLimit() {
        HboneLimits l = load(Map.of("svc.limits.handshake-timeout", "3s", "svc.limits.idle-timeout", "2m",
                "svc.limits.max-streams-in-setup", "7", "svc.limits.stream-setup-timeout", "9s",
                "svc.limits.rapid-reset-budget", "11", "svc.limits.rapid-reset-window", "13s",
                "svc.limits.max-header-list-size", "4096"));
        assertEquals(new HboneLimits(Duration.ofSeconds(3), Duration.ofMinutes(2), 7, Duration.ofSeconds(9), 11,
                Duration.ofSeconds(13), 4096), l);
    }

    @Test
    void nonsenseIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> load(Map.of("svc.limits.max-streams-in-setup", "0")));
        assertThrows(IllegalArgumentException.class, () -> load(Map.of("svc.limits.idle-timeout", "0s")));
        assertThrows(IllegalArgumentException.class,
                () -> config(Map.of("svc.limits.max-handshakes-per-source", "0")).toAdmissionLimits());
        assertThrows(IllegalArgumentException.class,
                () -> config(Map.of("svc.limits.max-connections", "-1")).toAdmissionLimits());
    }

    @Test
    void admissionKeysReachTheirBoundsWithTheRecordsDefaults() {
        assertEquals(HboneAdmission.Limits.DEFAULTS, config(Map.of()).toAdmissionLimits());
        assertEquals(new HboneAdmission.Limits(16, 1000, 300), config(Map.of("svc.limits.max-handshakes-per-source", "16",
                "svc.limits.max-connections", "1000", "svc.limits.max-connections-per-identity", "300"))
                .toAdmissionLimits());
    }

    /**
     * Automatic bounds: half the descriptors, at most 32 KiB of heap each, never under 64; half of
     * that per identity. Explicit values stay as given.
     */
    @ParameterizedTest(name = "{0} fds, {1} MiB heap, configured {2}/{3}: {4} connections, {5} per identity")
    @CsvSource({
            "1048576, 384, 0, 0, 12288, 6144", // the ztunnel DaemonSet: 512 MiB limit, 75 % heap
            "1048576, 192, 0, 0, 6144, 3072", // a waypoint: 256 MiB limit
            "20000, 6144, 0, 0, 10000, 5000", // descriptors scarcer than heap
            "100, 1, 0, 0, 64, 32", // the floor
            "1048576, 384, 500, 0, 500, 250",
            "1048576, 384, 500, 400, 500, 400"})
    void automaticBoundsFollowDescriptorsAndHeap(long fds, long heapMiB, int max, int perIdentity, int connections,
            int perIdentityResolved) {
        HboneAdmission.Limits resolved = new HboneAdmission.Limits(256, max, perIdentity).resolve(fds, heapMiB << 20);
        assertEquals(new HboneAdmission.Limits(256, connections, perIdentityResolved), resolved);
    }
}
