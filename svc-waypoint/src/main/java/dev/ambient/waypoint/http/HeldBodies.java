package dev.ambient.waypoint.http;

import dev.ambient.controlplane.RefusalLog;
import dev.ambient.waypoint.extauthz.BodySettings;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Duration;
import java.util.EnumMap;
import java.util.Map;

/**
 * The request bodies the waypoint holds for CUSTOM checks, across all requests: each at most its
 * provider's maxRequestBytes (svc-xds allows 1 MiB at most), all together at most
 * {@code maxBytes} (waypoint.ext-authz.max-buffered-body-bytes), each for at most
 * {@code readTimeout} (waypoint.ext-authz.body-read-timeout), so neither many large bodies nor
 * slow clients trickling theirs can hold the waypoint's memory. Each refusal is counted in
 * {@code waypoint_ext_authz_body_refusals_total{reason}}; a full budget is also logged, at most
 * once every 10 s. {@code waypoint_ext_authz_held_body_bytes} shows what is held. Thread-safe.
 */
public final class HeldBodies {

    /** Why a request was refused while its body was being held for a check, with its answer. */
    public enum Refusal {
        /** The body is longer than the provider's maxRequestBytes and it takes no partial body (Envoy's 413). */
        TOO_LARGE("too_large", 413, "Payload Too Large"),
        /**
         * The waypoint holds as much as it may: the request is fine, the waypoint is busy, so 503
         * (as Envoy's overload manager answers), which a client may retry; 413 would blame a body
         * within the limit.
         */
        BUDGET("budget", 503, "ext_authz: the waypoint holds too many request bodies, retry later"),
        /** The body did not arrive within the read timeout. */
        TIMEOUT("timeout", 408, "request timeout");

        public final String tag;
        public final int status;
        public final String body;

        Refusal(String tag, int status, String body) {
            this.tag = tag;
            this.status = status;
            this.body = body;
        }
    }

    private final BodyBudget budget;
    private final Duration readTimeout;
    private final Map<Refusal, Counter> refusals = new EnumMap<>(Refusal.class);
    private final RefusalLog budgetLog;

    public HeldBodies(long maxBytes, Duration readTimeout, MeterRegistry registry) {
        this.budget = new BodyBudget(maxBytes, "waypoint.ext-authz.max-buffered-body-bytes");
        this.readTimeout = readTimeout;
        for (Refusal r : Refusal.values()) {
            refusals.put(r, Counter.builder("waypoint_ext_authz_body_refusals_total")
                    .description("Requests refused while their body was held for an ext_authz check, by reason")
                    .tag("reason", r.tag).register(registry));
        }
        budgetLog = new RefusalLog(HeldBodies.class, refusals.get(Refusal.BUDGET));
        Gauge.builder("waypoint_ext_authz_held_body_bytes", budget, BodyBudget::held)
                .description("Request body bytes held for ext_authz checks now (bounded by"
                        + " waypoint.ext-authz.max-buffered-body-bytes)").register(registry);
    }

    /** A body to hold for a check with these settings. */
    HeldBody hold(BodySettings settings) {
        return new HeldBody(settings, budget);
    }

    public Duration readTimeout() {
        return readTimeout;
    }

    /** Counts a refusal (and logs a full budget, throttled); the request's own reason goes to the access log. */
    void refused(Refusal r) {
        if (r == Refusal.BUDGET) {
            budgetLog.refused("ext_authz: a request refused (503): the request bodies held for checks reached"
                    + " waypoint.ext-authz.max-buffered-body-bytes (" + budget.max() + " bytes)");
        } else {
            refusals.get(r).increment();
        }
    }

    /** Bytes held now. */
    public long held() {
        return budget.held();
    }
}
