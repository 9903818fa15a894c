package dev.ambient.ca.signing;

import dev.ambient.ca.Refusal;
import java.time.Duration;

/** How long an issued certificate lives: the default when none is asked for, never past the maximum. */
public record LifetimePolicy(Duration defaultLifetime, Duration maxLifetime) {

    public LifetimePolicy {
        if (maxLifetime.isNegative() || maxLifetime.isZero()) {
            throw new IllegalArgumentException("ca.workload-cert.max-lifetime must be positive, not " + maxLifetime);
        }
        if (defaultLifetime.isNegative() || defaultLifetime.isZero()) {
            throw new IllegalArgumentException("ca.workload-cert.default-lifetime must be positive, not " + defaultLifetime);
        }
        if (defaultLifetime.compareTo(maxLifetime) > 0) {
            throw new IllegalArgumentException("ca.workload-cert.default-lifetime (" + defaultLifetime
                    + ") is longer than ca.workload-cert.max-lifetime (" + maxLifetime + ")");
        }
    }

    /** The lifetime for a request of {@code requestedSeconds} (0 = default); longer requests are cut to the maximum. */
    public Duration lifetimeFor(long requestedSeconds) {
        if (requestedSeconds < 0) {
            throw new Refusal(Refusal.Reason.INVALID_REQUEST, "validity_seconds must not be negative, got " + requestedSeconds);
        }
        if (requestedSeconds == 0) {
            return defaultLifetime;
        }
        Duration requested = Duration.ofSeconds(requestedSeconds);
        return requested.compareTo(maxLifetime) > 0 ? maxLifetime : requested;
    }
}
