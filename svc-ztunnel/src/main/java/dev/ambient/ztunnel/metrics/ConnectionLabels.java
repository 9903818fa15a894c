package dev.ambient.ztunnel.metrics;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import io.micrometer.core.instrument.Tags;

/**
 * The labels of Istio's TCP metrics, so that existing dashboards and Kiali queries work unchanged.
 * "unknown" where a side is not a known workload, as Istio reports it.
 */
public record ConnectionLabels(String reporter, String sourceWorkload, String sourceNamespace,
        String sourcePrincipal, String sourceCanonicalService, String sourceCanonicalRevision,
        String destinationWorkload, String destinationNamespace, String destinationPrincipal,
        String destinationService, String destinationServiceName, String destinationServiceNamespace,
        String destinationCanonicalService, String destinationCanonicalRevision, String securityPolicy) {

    public static final String UNKNOWN = "unknown";
    public static final String MUTUAL_TLS = "mutual_tls";
    public static final String NONE = "none";

    /** Labels for a connection between two (possibly unknown) parties. */
    public static ConnectionLabels of(String reporter, Workload source, SpiffeId sourceId, Workload destination,
            SpiffeId destinationId, Service service, boolean mtls) {
        return new ConnectionLabels(reporter,
                source == null ? UNKNOWN : workloadName(source),
                source == null ? (sourceId == null ? UNKNOWN : sourceId.namespace()) : source.getNamespace(),
                sourceId == null ? UNKNOWN : sourceId.uri(),
                source == null ? UNKNOWN : canonical(source),
                source == null ? UNKNOWN : or(source.getCanonicalRevision(), "latest"),
                destination == null ? UNKNOWN : workloadName(destination),
                destination == null ? UNKNOWN : destination.getNamespace(),
                destinationId == null ? UNKNOWN : destinationId.uri(),
                service == null ? UNKNOWN : service.getHostname(),
                service == null ? UNKNOWN : service.getName(),
                service == null ? UNKNOWN : service.getNamespace(),
                destination == null ? UNKNOWN : canonical(destination),
                destination == null ? UNKNOWN : or(destination.getCanonicalRevision(), "latest"),
                mtls ? MUTUAL_TLS : NONE);
    }

    Tags tags() {
        return Tags.of(
                "reporter", reporter,
                "source_workload", sourceWorkload,
                "source_workload_namespace", sourceNamespace,
                "source_principal", sourcePrincipal,
                "source_canonical_service", sourceCanonicalService,
                "source_canonical_revision", sourceCanonicalRevision,
                "destination_workload", destinationWorkload,
                "destination_workload_namespace", destinationNamespace,
                "destination_principal", destinationPrincipal,
                "destination_service", destinationService,
                "destination_service_name", destinationServiceName,
                "destination_service_namespace", destinationServiceNamespace,
                "destination_canonical_service", destinationCanonicalService,
                "destination_canonical_revision", destinationCanonicalRevision,
                "request_protocol", "tcp",
                "connection_security_policy", securityPolicy);
    }

    private static String workloadName(Workload w) {
        return or(w.getWorkloadName(), or(w.getCanonicalName(), w.getName()));
    }

    private static String canonical(Workload w) {
        return or(w.getCanonicalName(), w.getName());
    }

    private static String or(String v, String fallback) {
        return v == null || v.isEmpty() ? fallback : v;
    }
}
