package dev.ambient.xds.discovery;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The discovery server's metrics, named as istiod's so that Istio dashboards apply:
 * <ul>
 * <li>{@code pilot_xds{type="ztunnel"|"waypoint"}}: connected clients (gauge);</li>
 * <li>{@code pilot_xds_pushes_total{type=<resource type>}}: responses sent;</li>
 * <li>{@code pilot_total_xds_rejects_total{type=<resource type>}}: NACKs received;</li>
 * <li>{@code pilot_proxy_convergence_time}: seconds from a snapshot reaching the server to the
 * response carrying its change being sent (histogram, Istio's buckets and finer ones).</li>
 * </ul>
 * (Micrometer's Prometheus registry appends {@code _total} to counters; Istio's names lack it.)
 */
@ApplicationScoped
public class DiscoveryMetrics {

    private final Map<String, AtomicInteger> connected = new ConcurrentHashMap<>();
    private final Map<String, Counter> pushes = new ConcurrentHashMap<>();
    private final Map<String, Counter> rejects = new ConcurrentHashMap<>();
    private final Map<String, Counter> refusals = new ConcurrentHashMap<>();
    private final MeterRegistry registry;
    private final DistributionSummary convergence;

    @Inject
    public DiscoveryMetrics(MeterRegistry registry) {
        this.registry = registry;
        for (String role : new String[] {"ztunnel", "waypoint"}) {
            gaugeOf(role);
        }
        this.convergence = DistributionSummary.builder("pilot_proxy_convergence_time")
                .description("Delay in seconds between a config change and a proxy receiving it")
                .serviceLevelObjectives(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 3, 5, 10, 20, 30)
                .register(registry);
    }

    private AtomicInteger gaugeOf(String role) {
        return connected.computeIfAbsent(role, r -> {
            AtomicInteger n = new AtomicInteger();
            Gauge.builder("pilot_xds", n, AtomicInteger::get).description("Number of connected xDS clients")
                    .tag("type", r).register(registry);
            return n;
        });
    }

    static String roleTag(dev.ambient.proto.discovery.Node.Role role) {
        return role.name().toLowerCase(Locale.ROOT);
    }

    /** "type.googleapis.com/ambient.v1.Workload" -> "Workload". */
    static String shortType(String typeUrl) {
        int dot = typeUrl.lastIndexOf('.');
        int slash = typeUrl.lastIndexOf('/');
        return typeUrl.substring(Math.max(dot, slash) + 1);
    }

    void connected(String role, int delta) {
        gaugeOf(role).addAndGet(delta);
    }

    void pushed(String typeUrl) {
        pushes.computeIfAbsent(typeUrl, t -> Counter.builder("pilot_xds_pushes")
                .description("Discovery responses sent, by resource type").tag("type", shortType(t))
                .register(registry)).increment();
    }

    void rejected(String typeUrl) {
        rejects.computeIfAbsent(typeUrl, t -> Counter.builder("pilot_total_xds_rejects")
                .description("Discovery responses rejected (NACKed) by clients, by resource type").tag("type", shortType(t))
                .register(registry)).increment();
    }

    /** A stream refused before it was served: {@code unauthenticated}, {@code unavailable}, {@code busy}, {@code permission_denied}. */
    void refused(String reason) {
        refusals.computeIfAbsent(reason, r -> Counter.builder("xds_stream_refusals")
                .description("Discovery streams refused: no valid token, or not allowed to stream as what they claim")
                .tag("reason", r).register(registry)).increment();
    }

    void converged(long nanos) {
        convergence.record(nanos / 1e9);
    }
}
