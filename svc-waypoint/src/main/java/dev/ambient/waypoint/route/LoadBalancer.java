package dev.ambient.waypoint.route;

import dev.ambient.proto.workload.OutlierDetection;
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
 * of two picked at random, as Envoy), skipping endpoints ejected as outliers and, on a retry, the
 * endpoints that already failed this request.
 *
 * <p>Outlier detection is Envoy's consecutive-errors detection, and only where a DestinationRule
 * asks for it ({@link OutlierDetection} on the service); without one nothing is ever ejected, as
 * in Istio. {@code consecutive_5xx_errors} counts 5xx responses and local failures (connect,
 * reset, timeout) in a row, {@code consecutive_gateway_errors} 502/503/504 and local failures; a
 * response outside each set ends its streak. An ejection lasts {@code base_ejection} times the
 * endpoint's ejections, rounded up to the next {@code interval} sweep, and its count goes down by
 * one for each interval the endpoint then stays in; at most {@code max_ejection_percent} of the
 * service's endpoints are out at once, though one always may be (Envoy's rule).
 */
public final class LoadBalancer {

    private static final Logger LOG = Logger.getLogger(LoadBalancer.class);
    /** Envoy's max_ejection_time default: no ejection longer than this (or the base time, if longer). */
    private static final long MAX_EJECTION_NANOS = Duration.ofSeconds(300).toNanos();

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
        final AtomicInteger consecutive5xx = new AtomicInteger();
        final AtomicInteger consecutiveGateway = new AtomicInteger();
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
    private final Map<String, Stats> stats = new ConcurrentHashMap<>();
    private final Map<String, AtomicLong> cursors = new ConcurrentHashMap<>();

    public LoadBalancer(Policy policy) {
        this.policy = policy;
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

    /**
     * A response from {@code e}, or (status 0) a local failure: connect, reset, timeout. Counted
     * only under the service's outlier detection ({@code od}, null = none); may eject {@code e}.
     */
    public void outcome(Endpoint e, List<Endpoint> siblings, OutlierDetection od, int status, String why) {
        if (od == null) {
            return;
        }
        Stats s = stats(e.uid());
        boolean fiveXx = status == 0 || status >= 500;
        boolean gateway = status == 0 || status == 502 || status == 503 || status == 504;
        int n5xx = fiveXx ? s.consecutive5xx.incrementAndGet() : reset(s.consecutive5xx);
        int nGateway = gateway ? s.consecutiveGateway.incrementAndGet() : reset(s.consecutiveGateway);
        boolean trips = (od.getConsecutive5XxErrors() > 0 && n5xx >= od.getConsecutive5XxErrors())
                || (od.getConsecutiveGatewayErrors() > 0 && nGateway >= od.getConsecutiveGatewayErrors());
        long now = System.nanoTime();
        if (!trips || s.ejected(now)) {
            return;
        }
        long ejectedNow = siblings.stream().filter(x -> stats(x.uid()).ejected(now)).count();
        if (ejectedNow > 0 && (ejectedNow + 1) * 100 > (long) od.getMaxEjectionPercent() * siblings.size()) {
            LOG.infof("outlier: %s failed %d times in a row (%s) but %d of %d endpoints are ejected already (at most"
                    + " %d %% by %s); kept", e.uid(), Math.max(n5xx, nGateway), why, ejectedNow, siblings.size(),
                    od.getMaxEjectionPercent(), od.getSource());
            return;
        }
        long interval = Duration.ofMillis(Math.max(1, od.getIntervalMs())).toNanos();
        long base = Duration.ofMillis(od.getBaseEjectionMs()).toNanos();
        synchronized (s) {
            if (s.ejections > 0 && s.ejectedUntilNanos != 0) {
                // Envoy lowers the multiplier by one for each interval the endpoint stayed in.
                long healthyIntervals = Math.max(0, (now - s.ejectedUntilNanos) / interval);
                s.ejections = (int) Math.max(0, s.ejections - healthyIntervals);
            }
            s.ejections++;
            long d = Math.min(base * s.ejections, Math.max(base, MAX_EJECTION_NANOS));
            d = (d + interval - 1) / interval * interval; // back at the first sweep after its time
            s.ejectedUntilNanos = now + d;
        }
        s.consecutive5xx.set(0);
        s.consecutiveGateway.set(0);
        LOG.infof("outlier: ejecting %s for %d ms after %d consecutive failures (last: %s; %s)", e.uid(),
                s.ejectedUntilNanos / 1_000_000 - now / 1_000_000, Math.max(n5xx, nGateway), why, od.getSource());
    }

    private static int reset(AtomicInteger streak) {
        streak.set(0);
        return 0;
    }

    public boolean ejected(String uid) {
        Stats s = stats.get(uid);
        return s != null && s.ejected(System.nanoTime());
    }
}
