package dev.ambient.ztunnel.dns;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The DNS proxy's metrics, with Istio's ztunnel names where it has them
 * ({@code istio_dns_requests_total}, {@code istio_dns_upstream_requests_total},
 * {@code istio_dns_upstream_failures_total}, {@code istio_dns_upstream_request_duration_seconds}),
 * and ours for the rest. Labels are bounded: namespaces and workload names of this node's pods,
 * fixed words otherwise.
 */
public final class DnsMetrics {

    private final MeterRegistry registry;
    private final Map<String, Counter> counters = new ConcurrentHashMap<>();
    private final Timer upstreamDuration;

    public DnsMetrics(MeterRegistry registry, DnsCache cache) {
        this.registry = registry;
        this.upstreamDuration = Timer.builder("istio_dns_upstream_request_duration_seconds")
                .description("Time to an upstream resolver's answer").register(registry);
        Gauge.builder("ztunnel_dns_cache_entries", cache, DnsCache::size)
                .description("Upstream answers held in the DNS cache (ztunnel.dns.cache-max-entries)").register(registry);
    }

    /** A query received from a workload ({@code source_workload} "unknown" when it is none of ours). */
    public void request(String sourceNamespace, String sourceWorkload) {
        counter("istio_dns_requests", "DNS queries received from workloads", "source_workload_namespace",
                sourceNamespace, "source_workload", sourceWorkload).increment();
    }

    /** How a query was answered: local, cache, upstream, nxdomain (a search-path expansion), servfail, formerr, notimp. */
    public void answered(String how) {
        counter("ztunnel_dns_answers", "DNS queries answered, by where the answer came from", "answer", how)
                .increment();
        if (how.equals("cache")) {
            counter("ztunnel_dns_cache_hits", "DNS queries answered from the cache").increment();
        }
    }

    /** A query not answered: rate_limited, outstanding, malformed, response, tcp_connections, oversized. */
    public void refused(String reason) {
        counter("ztunnel_dns_refused", "DNS queries or connections dropped or refused, by reason", "reason", reason)
                .increment();
    }

    public void upstreamRequest(Duration took) {
        counter("istio_dns_upstream_requests", "DNS queries forwarded to an upstream resolver").increment();
        upstreamDuration.record(took);
    }

    /** No answer from any upstream: timeout, error, no_upstream. */
    public void upstreamFailure(String kind) {
        counter("istio_dns_upstream_failures", "Forwarded DNS queries no upstream answered", "reason", kind)
                .increment();
    }

    private Counter counter(String name, String description, String... tags) {
        String key = name + String.join(",", tags);
        return counters.computeIfAbsent(key, k -> Counter.builder(name).description(description).tags(tags)
                .register(registry));
    }
}
