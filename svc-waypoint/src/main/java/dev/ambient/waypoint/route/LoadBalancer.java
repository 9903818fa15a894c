package dev.ambient.waypoint.route;

import dev.ambient.waypoint.state.WaypointState.Endpoint;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.jboss.logging.Logger;

/**
 * Picks an endpoint among a service's healthy ones: round robin or least requests (the fewer busy
 * of two picked at random, as Envoy), skipping endpoints ejected as outliers (consecutive 5xx or
 * connect failures) and, on a retry, the endpoints that already failed this request. Ejection
 * lasts longer each time the same endpoint is ejected, and never takes more than the configured
 * share of a service's endpoints out.
 */
public final class LoadBalancer {

    private static final Logger LOG = Logger.getLogger(LoadBalancer.class);

    public enum Policy {
        ROUND_ROBIN, LEAST_REQUEST;

        public static Policy parse(String s) {
            return switch (s) {
                case "round-robin" -> ROUND_ROBIN;
                case "least-request" -> LEAST_REQUEST;
                default -> throw new IllegalArgumentException("waypoint.upstream.load-balancing=" + s
                        + " is unknown; use 'round-robin' or 'least-request'");
            };
        }
    }

    /** Per endpoint (by workload uid): requests in flight and outlier state. */
    public static final class Stats {
        final AtomicInteger active = new AtomicInteger();
        final AtomicInteger consecutiveFailures = new AtomicInteger();
        volatile long ejectedUntilNanos;
        volatile int ejections;

        public int active() {
            return active.get();
        }

        /** A request to this endpoint starts (least-request counts these). */
        public void begin() {
            active.incrementAndGet();
        }

        public void end() {
            active.decrementAndGet();
        }

        boolean ejected(long now) {
            return ejectedUntilNanos - now > 0;
        }
    }

    private final Policy policy;
    private final int consecutiveFailures;
    private final Duration baseEjection;
    private final int maxEjectionPercent;
    private final Map<String, Stats> stats = new ConcurrentHashMap<>();
    private final Map<String, AtomicLong> cursors = new ConcurrentHashMap<>();

    public LoadBalancer(Policy policy, int consecutiveFailures, Duration baseEjection, int maxEjectionPercent) {
        this.policy = policy;
        this.consecutiveFailures = consecutiveFailures;
        this.baseEjection = baseEjection;
        this.maxEjectionPercent = maxEjectionPercent;
    }

    public Stats stats(String uid) {
        return stats.computeIfAbsent(uid, k -> new Stats());
    }

    /**
     * @param serviceKey the service whose endpoints these are (round-robin cursor)
     * @param avoid endpoint uids that failed this request already
     * @return null when there is no endpoint
     */
    public Endpoint pick(String serviceKey, List<Endpoint> endpoints, Set<String> avoid) {
        if (endpoints.isEmpty()) {
            return null;
        }
        long now = System.nanoTime();
        List<Endpoint> usable = new ArrayList<>(endpoints.size());
        for (Endpoint e : endpoints) {
            if (!stats(e.uid()).ejected(now) && !avoid.contains(e.uid())) {
                usable.add(e);
            }
        }
        if (usable.isEmpty()) {
            // Everything ejected or already tried: better any endpoint than none (Envoy's panic mode).
            for (Endpoint e : endpoints) {
                if (!avoid.contains(e.uid())) {
                    usable.add(e);
                }
            }
            if (usable.isEmpty()) {
                usable = endpoints;
            }
        }
        if (usable.size() == 1) {
            return usable.getFirst();
        }
        return switch (policy) {
            case ROUND_ROBIN -> usable.get((int) Math.floorMod(
                    cursors.computeIfAbsent(serviceKey, k -> new AtomicLong()).getAndIncrement(), usable.size()));
            case LEAST_REQUEST -> {
                ThreadLocalRandom r = ThreadLocalRandom.current();
                Endpoint a = usable.get(r.nextInt(usable.size()));
                Endpoint b = usable.get(r.nextInt(usable.size()));
                yield stats(a.uid()).active() <= stats(b.uid()).active() ? a : b;
            }
        };
    }

    /** A response that was not a 5xx: the endpoint's failure streak ends. */
    public void succeeded(Endpoint e) {
        stats(e.uid()).consecutiveFailures.set(0);
    }

    /** A 5xx or a connect failure; ejects the endpoint after enough in a row. */
    public void failed(Endpoint e, List<Endpoint> siblings, String why) {
        Stats s = stats(e.uid());
        int n = s.consecutiveFailures.incrementAndGet();
        if (n < consecutiveFailures || s.ejected(System.nanoTime())) {
            return;
        }
        long now = System.nanoTime();
        long ejectedNow = siblings.stream().filter(x -> stats(x.uid()).ejected(now)).count();
        if ((ejectedNow + 1) * 100 > (long) maxEjectionPercent * siblings.size()) {
            LOG.infof("outlier: %s failed %d times in a row (%s) but %d of %d endpoints are ejected already; kept",
                    e.uid(), n, why, ejectedNow, siblings.size());
            return;
        }
        s.ejections++;
        Duration d = baseEjection.multipliedBy(s.ejections);
        s.ejectedUntilNanos = now + d.toNanos();
        s.consecutiveFailures.set(0);
        LOG.infof("outlier: ejecting %s for %d ms after %d consecutive failures (last: %s)", e.uid(), d.toMillis(), n,
                why);
    }

    public boolean ejected(String uid) {
        Stats s = stats.get(uid);
        return s != null && s.ejected(System.nanoTime());
    }
}
