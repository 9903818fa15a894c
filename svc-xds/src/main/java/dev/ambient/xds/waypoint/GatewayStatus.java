package dev.ambient.xds.waypoint;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The status the controller writes on a waypoint Gateway: conditions Accepted and Programmed
 * (Gateway API types and reasons) and the addresses at which the waypoint is reached.
 */
public final class GatewayStatus {

    /** A condition as Gateway API defines it (metav1.Condition without lastTransitionTime). */
    public record Condition(String type, boolean status, String reason, String message) {
    }

    private GatewayStatus() {
    }

    public static Condition accepted() {
        return new Condition("Accepted", true, "Accepted", "the waypoint's Deployment, Service and autoscaler are managed by xds");
    }

    public static Condition rejected(String reason, String message) {
        return new Condition("Accepted", false, reason, message);
    }

    public static Condition programmed(int availableReplicas) {
        return availableReplicas >= 1
                ? new Condition("Programmed", true, "Programmed", availableReplicas + " waypoint replica(s) available")
                : new Condition("Programmed", false, "Pending", "waiting for the waypoint Deployment to have an available replica");
    }

    public static Condition notProgrammed(String reason, String message) {
        return new Condition("Programmed", false, reason, message);
    }

    /**
     * The whole status object to write, keeping each condition's lastTransitionTime when its
     * status did not change (so an unchanged Gateway gets an identical status and no write).
     */
    public static Map<String, Object> build(GenericKubernetesResource gateway, List<Condition> conditions,
            List<Map<String, String>> addresses) {
        Map<String, Map<String, Object>> previous = previousConditions(gateway);
        Long generation = gateway.getMetadata().getGeneration();
        String now = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
        List<Map<String, Object>> out = new ArrayList<>();
        for (Condition c : conditions) {
            Map<String, Object> m = new LinkedHashMap<>();
            String status = c.status() ? "True" : "False";
            Map<String, Object> old = previous.get(c.type());
            m.put("type", c.type());
            m.put("status", status);
            m.put("reason", c.reason());
            m.put("message", c.message());
            m.put("lastTransitionTime", old != null && status.equals(old.get("status")) && old.get("lastTransitionTime") != null
                    ? old.get("lastTransitionTime") : now);
            if (generation != null) {
                m.put("observedGeneration", generation);
            }
            out.add(m);
        }
        Map<String, Object> status = new LinkedHashMap<>();
        if (!addresses.isEmpty()) {
            status.put("addresses", addresses);
        }
        status.put("conditions", out);
        return status;
    }

    /** The waypoint's addresses: its Service's DNS name and, once assigned, its cluster IP. */
    public static List<Map<String, String>> addresses(String namespace, String name, String clusterDomain, String clusterIp) {
        List<Map<String, String>> addresses = new ArrayList<>();
        addresses.add(Map.of("type", "Hostname", "value", name + "." + namespace + ".svc." + clusterDomain));
        if (clusterIp != null && !clusterIp.isBlank() && !"None".equals(clusterIp)) {
            addresses.add(Map.of("type", "IPAddress", "value", clusterIp));
        }
        return addresses;
    }

    /** True when the Gateway's status already is {@code wanted} (compared as JSON values). */
    public static boolean isCurrent(GenericKubernetesResource gateway, Map<String, Object> wanted) {
        JsonNode have = Serialization.jsonMapper().valueToTree(gateway.getAdditionalProperties().get("status"));
        JsonNode want = Serialization.jsonMapper().valueToTree(wanted);
        return Objects.equals(normalize(have), normalize(want));
    }

    private static JsonNode normalize(JsonNode n) {
        // Round trip through text, so that 1 (int) and 1 (long) compare equal.
        try {
            return Serialization.jsonMapper().readTree(Serialization.jsonMapper().writeValueAsString(n));
        } catch (Exception e) {
            return n;
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Map<String, Object>> previousConditions(GenericKubernetesResource gateway) {
        Map<String, Map<String, Object>> byType = new LinkedHashMap<>();
        Object status = gateway.getAdditionalProperties().get("status");
        if (status instanceof Map<?, ?> s && s.get("conditions") instanceof List<?> list) {
            for (Object o : list) {
                if (o instanceof Map<?, ?> c && c.get("type") != null) {
                    byType.put(String.valueOf(c.get("type")), (Map<String, Object>) c);
                }
            }
        }
        return byType;
    }
}
