package dev.ambient.waypoint.telemetry;

/**
 * Istio's standard labels of one HTTP request as a waypoint reports it; {@code requestProtocol} is
 * "grpc" or "http", {@code grpcResponseStatus} the call's grpc-status ("" when not gRPC).
 */
public record RequestLabels(String sourceWorkload, String sourceWorkloadNamespace, String sourcePrincipal,
        String destinationWorkload, String destinationWorkloadNamespace, String destinationPrincipal,
        String destinationService, String destinationServiceName, String destinationServiceNamespace,
        String responseCode, String requestProtocol, String grpcResponseStatus, String responseFlags) {
}
