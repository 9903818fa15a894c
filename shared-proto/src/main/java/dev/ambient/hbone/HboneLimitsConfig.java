package dev.ambient.hbone;

import io.smallrye.config.WithDefault;
import java.time.Duration;

/**
 * {@link HboneLimits} (what one connection may cost) and {@link HboneAdmission.Limits} (how many
 * connections there may be) as a Quarkus configuration group, embedded where a service configures
 * its HBONE listeners (svc-ztunnel: {@code ztunnel.dataplane.limits.*}, svc-waypoint:
 * {@code waypoint.listen.limits.*}). The defaults are those records' {@code DEFAULTS}; each key is
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

    @WithDefault("256")
    int maxHandshakesPerSource();

    /** 0: automatic (half of RLIMIT_NOFILE, at most what the heap holds; see {@link HboneAdmission.Limits#resolve}). */
    @WithDefault("0")
    int maxConnections();

    /** 0: automatic (half of max-connections). */
    @WithDefault("0")
    int maxConnectionsPerIdentity();

    default HboneAdmission.Limits toAdmissionLimits() {
        return new HboneAdmission.Limits(maxHandshakesPerSource(), maxConnections(), maxConnectionsPerIdentity());
    }

    default HboneLimits toLimits() {
        return new HboneLimits(handshakeTimeout(), idleTimeout(), maxStreamsInSetup(), streamSetupTimeout(),
                rapidResetBudget(), rapidResetWindow(), maxHeaderListSize());
    }
}
