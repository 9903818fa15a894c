package dev.ambient.waypoint.telemetry;

import dev.ambient.proto.workload.Workload;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The source workload's metadata that a ztunnel puts in the CONNECT's W3C {@code baggage} (the keys
 * Istio uses), for telemetry when the configuration does not hold the source workload (svc-xds
 * sends a waypoint only what it serves).
 */
public final class Baggage {

    private Baggage() {
    }

    /** A workload carrying what the baggage says, or empty when it names no namespace and service. */
    public static Optional<Workload> sourceWorkload(CharSequence baggage) {
        if (baggage == null) {
            return Optional.empty();
        }
        Map<String, String> kv = new HashMap<>();
        for (String member : baggage.toString().split(",")) {
            int eq = member.indexOf('=');
            if (eq > 0) {
                String value = member.substring(eq + 1);
                int props = value.indexOf(';');
                kv.put(member.substring(0, eq).trim(), (props >= 0 ? value.substring(0, props) : value).trim());
            }
        }
        String ns = kv.get("k8s.namespace.name");
        String service = kv.getOrDefault("k8s.deployment.name", kv.get("service.name"));
        if (ns == null || ns.isEmpty() || service == null || service.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(Workload.newBuilder().setNamespace(ns).setName(kv.getOrDefault("k8s.pod.name", service))
                .setWorkloadName(service).setCanonicalName(kv.getOrDefault("service.name", service))
                .setCanonicalRevision(kv.getOrDefault("service.version", "latest")).build());
    }
}
