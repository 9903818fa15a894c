package dev.ambient.waypoint.telemetry;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Istio's HTTP metrics, reporter="waypoint": istio_requests_total, and the histograms
 * istio_request_duration_milliseconds, istio_request_bytes, istio_response_bytes with Istio's
 * bucket bounds. Meters are cached per label set: the data path does one map lookup per request.
 */
public final class RequestMetrics {

    /** Istio's duration buckets, milliseconds. */
    static final double[] DURATION_BUCKETS = {0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
            60000, 300000, 600000, 1800000, 3600000};
    /** Istio's size buckets, bytes. */
    static final double[] SIZE_BUCKETS = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

    private record Meters(Counter requests, DistributionSummary duration, DistributionSummary requestBytes,
            DistributionSummary responseBytes) {
    }

    private final MeterRegistry registry;
    private final Map<RequestLabels, Meters> meters = new ConcurrentHashMap<>();

    public RequestMetrics(MeterRegistry registry) {
        this.registry = registry;
    }

    public void record(RequestLabels l, double durationMillis, long requestBytes, long responseBytes) {
        Meters m = meters.computeIfAbsent(l, this::create);
        m.requests.increment();
        m.duration.record(durationMillis);
        m.requestBytes.record(requestBytes);
        m.responseBytes.record(responseBytes);
    }

    private Meters create(RequestLabels l) {
        Tags tags = Tags.of(
                "reporter", "waypoint",
                "source_workload", l.sourceWorkload(),
                "source_workload_namespace", l.sourceWorkloadNamespace(),
                "source_principal", l.sourcePrincipal(),
                "destination_workload", l.destinationWorkload(),
                "destination_workload_namespace", l.destinationWorkloadNamespace(),
                "destination_principal", l.destinationPrincipal(),
                "destination_service", l.destinationService(),
                "destination_service_name", l.destinationServiceName(),
                "destination_service_namespace", l.destinationServiceNamespace(),
                "response_code", l.responseCode(),
                "request_protocol", l.requestProtocol(),
                "grpc_response_status", l.grpcResponseStatus(),
                "response_flags", l.responseFlags(),
                "connection_security_policy", "mutual_tls");
        return new Meters(
                Counter.builder("istio_requests_total").description("Requests handled by the waypoint").tags(tags)
                        .register(registry),
                DistributionSummary.builder("istio_request_duration_milliseconds")
                        .description("Request duration, milliseconds").tags(tags)
                        .serviceLevelObjectives(DURATION_BUCKETS).register(registry),
                DistributionSummary.builder("istio_request_bytes").description("Request size, bytes").tags(tags)
                        .serviceLevelObjectives(SIZE_BUCKETS).register(registry),
                DistributionSummary.builder("istio_response_bytes").description("Response size, bytes").tags(tags)
                        .serviceLevelObjectives(SIZE_BUCKETS).register(registry));
    }
}
