package dev.ambient.waypoint.http;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Duration;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The waypoint's RequestMirror traffic as a whole: how many copies may be under way at once
 * (waypoint.http.max-mirrors-in-flight, a copy's held body counting from the request's head to its
 * mirror's end), how long one may take, and the counter {@code waypoint_mirrors_total} by outcome.
 * A copy that cannot be made or sent is dropped and counted, never waited for: the primary request
 * goes on as if there were no mirror.
 */
public final class Mirrors {

    /** What became of a copy; the {@code outcome} label. */
    public enum Outcome {
        /** Sent whole, and the mirror's response (discarded) came back. */
        SENT("sent"),
        /** Sent, but the mirror failed, reset or timed out. */
        FAILED("failed"),
        /** Not made: max-mirrors-in-flight copies were under way. */
        DROPPED_IN_FLIGHT("dropped_in_flight"),
        /** Not sent: the body outgrew retry-buffer-bytes or the waypoint's body budget. */
        DROPPED_BODY("dropped_body"),
        /** Not sent: the mirror's service has no endpoint (or is unknown). */
        DROPPED_NO_ENDPOINT("dropped_no_endpoint"),
        /** Not sent: the request never arrived whole (the client went away, or it was answered before). */
        DROPPED_INCOMPLETE("dropped_incomplete");

        final String label;

        Outcome(String label) {
            this.label = label;
        }
    }

    final int maxInFlight;
    final Duration timeout;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final Map<Outcome, Counter> counters = new EnumMap<>(Outcome.class);

    public Mirrors(int maxInFlight, Duration timeout, MeterRegistry registry) {
        if (maxInFlight < 0) {
            throw new IllegalArgumentException("waypoint.http.max-mirrors-in-flight must not be negative: " + maxInFlight);
        }
        this.maxInFlight = maxInFlight;
        this.timeout = timeout;
        for (Outcome o : Outcome.values()) {
            counters.put(o, Counter.builder("waypoint_mirrors_total")
                    .description("RequestMirror copies, by what became of them").tag("outcome", o.label)
                    .register(registry));
        }
    }

    /** Takes a place for one copy, or counts it dropped and says false. */
    boolean tryBegin() {
        int now;
        do {
            now = inFlight.get();
            if (now >= maxInFlight) {
                counters.get(Outcome.DROPPED_IN_FLIGHT).increment();
                return false;
            }
        } while (!inFlight.compareAndSet(now, now + 1));
        return true;
    }

    /** A copy is over (its place given back) with this outcome. */
    void ended(Outcome outcome) {
        inFlight.decrementAndGet();
        counters.get(outcome).increment();
    }

    public int inFlight() {
        return inFlight.get();
    }

    public double count(Outcome outcome) {
        return counters.get(outcome).count();
    }
}
