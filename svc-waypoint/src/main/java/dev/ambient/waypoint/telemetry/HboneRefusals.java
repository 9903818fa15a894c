package dev.ambient.waypoint.telemetry;

import dev.ambient.hbone.HboneLimit;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.EnumMap;
import java.util.Map;

/**
 * {@code waypoint_hbone_refused_total{reason}}: every time an HBONE client connection ran into one
 * of the listener's bounds (shared-proto {@link HboneLimit}, its tag the reason), logged or not. Log
 * lines of refusals are throttled; this count is not.
 */
public final class HboneRefusals {

    private final Map<HboneLimit, Counter> counters = new EnumMap<>(HboneLimit.class);

    public HboneRefusals(MeterRegistry registry) {
        for (HboneLimit limit : HboneLimit.values()) {
            counters.put(limit, Counter.builder("waypoint_hbone_refused_total")
                    .description("Inbound HBONE connections or tunnels that ran into a bound of the listener, by which")
                    .tag("reason", limit.tag()).register(registry));
        }
    }

    public void count(HboneLimit limit) {
        counters.get(limit).increment();
    }
}
