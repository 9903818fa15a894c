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

/** The configuration keys of the limits map onto {@link HboneLimits}, with the same defaults. */
class HboneLimitsConfigTest {

    @ConfigMapping(prefix = "svc")
    interface Root {
        HboneLimitsConfig limits();
    }

    private static HboneLimits load(Map<String, String> properties) {
        // Quarkus's converter, for "10s" and "5m" as the services read them
        SmallRyeConfig config = new SmallRyeConfigBuilder().withMapping(Root.class)
                .withConverter(Duration.class, 100, new DurationConverter())
                .withSources(new PropertiesConfigSource(properties, "test", 100)).build();
        return config.getConfigMapping(Root.class).limits().toLimits();
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
    }
}
