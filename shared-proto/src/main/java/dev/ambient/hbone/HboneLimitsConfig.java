package dev.ambient.hbone;

import io.smallrye.config.WithDefault;
import java.time.Duration;

/**
 * {@link HboneLimits} as a Quarkus configuration group, embedded where a service configures its
 * HBONE listener (svc-ztunnel: {@code ztunnel.dataplane.limits.*}, svc-waypoint:
 * {@code waypoint.listen.limits.*}). The defaults are {@link HboneLimits#DEFAULTS}; each key is
 * documented in those services' READMEs.
 */
public interface HboneLimitsConfig {

    @WithDefault("10s")
    Duration handshakeTimeout();

    @WithDefault("5m")
    Duration idleTimeout();

    @WithDefault("100")
    int maxStreamsInSetup();

    @WithDefault("30s")
    Duration streamSetupTimeout();

    @WithDefault("200")
    int rapidResetBudget();

    @WithDefault("10s")
    Duration rapidResetWindow();

    @WithDefault("8192")
    int maxHeaderListSize();

    default HboneLimits toLimits() {
        return new HboneLimits(handshakeTimeout(), idleTimeout(), maxStreamsInSetup(), streamSetupTimeout(),
                rapidResetBudget(), rapidResetWindow(), maxHeaderListSize());
    }
}
