package dev.ambient.xds.waypoint;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * What the controller reads from a {@code gateway.networking.k8s.io/v1} Gateway, and the checks
 * that decide whether it can be turned into a waypoint ({@link #validate}).
 */
public final class WaypointGateway {

    public static final String GROUP = "gateway.networking.k8s.io";
    public static final String VERSION = "v1";
    public static final String API_VERSION = GROUP + "/" + VERSION;
    public static final String KIND = "Gateway";
    public static final String PLURAL = "gateways";

    public static final ResourceDefinitionContext CONTEXT = new ResourceDefinitionContext.Builder()
            .withGroup(GROUP)
            .withVersion(VERSION)
            .withKind(KIND)
            .withPlural(PLURAL)
            .withNamespaced(true)
            .build();

    /** The listener every waypoint must have: HBONE on 15008 (what {@code istioctl waypoint generate} writes). */
    public static final String HBONE_PROTOCOL = "HBONE";
    public static final int HBONE_PORT = 15008;

    /** Our annotations on a Gateway (Istio has none for this; see k8s/xds/README.md). */
    public static final String MIN_REPLICAS_ANNOTATION = "autoscaling.ambient.dev/min-replicas";
    public static final String MAX_REPLICAS_ANNOTATION = "autoscaling.ambient.dev/max-replicas";
    public static final int DEFAULT_MIN_REPLICAS = 1;
    public static final int DEFAULT_MAX_REPLICAS = 5;

    /** Service names must be DNS-1035 labels; the name is also a label value (63 characters at most). */
    private static final Pattern DNS_1035_LABEL = Pattern.compile("[a-z]([-a-z0-9]*[a-z0-9])?");

    /** Either the replica bounds of an acceptable waypoint, or why it was rejected. */
    public sealed interface Verdict permits Valid, Invalid {
    }

    public record Valid(int minReplicas, int maxReplicas) implements Verdict {
    }

    /** {@code reason} is a Gateway API condition reason (Invalid, ListenersNotValid). */
    public record Invalid(String reason, String message) implements Verdict {
    }

    private WaypointGateway() {
    }

    public static String key(String namespace, String name) {
        return namespace + "/" + name;
    }

    public static String key(GenericKubernetesResource gateway) {
        return key(gateway.getMetadata().getNamespace(), gateway.getMetadata().getName());
    }

    public static String gatewayClassName(GenericKubernetesResource gateway) {
        Object v = spec(gateway).get("gatewayClassName");
        return v == null ? null : v.toString();
    }

    public static boolean isBeingDeleted(GenericKubernetesResource gateway) {
        return gateway.getMetadata().getDeletionTimestamp() != null;
    }

    /** Checks a Gateway of our class; never throws, whatever the Gateway contains. */
    public static Verdict validate(GenericKubernetesResource gateway) {
        String name = gateway.getMetadata().getName();
        if (name == null || name.length() > 63 || !DNS_1035_LABEL.matcher(name).matches()) {
            return new Invalid("Invalid", "the name \"" + name + "\" cannot name the waypoint's Service and "
                    + "Deployment: it must be a DNS-1035 label (lowercase letters, digits and '-', starting "
                    + "with a letter, at most 63 characters)");
        }
        Object listeners = spec(gateway).get("listeners");
        if (!(listeners instanceof List<?> list) || list.isEmpty()) {
            return new Invalid("ListenersNotValid", "a waypoint needs a listener {protocol: HBONE, port: 15008}; "
                    + "spec.listeners is missing or empty");
        }
        boolean hbone = list.stream().anyMatch(l -> l instanceof Map<?, ?> m
                && HBONE_PROTOCOL.equals(String.valueOf(m.get("protocol")))
                && String.valueOf(HBONE_PORT).equals(String.valueOf(m.get("port"))));
        if (!hbone) {
            return new Invalid("ListenersNotValid", "a waypoint needs a listener {protocol: HBONE, port: 15008}; "
                    + "none of the " + list.size() + " listener(s) is one");
        }
        Map<String, String> annotations = Objects.requireNonNullElse(gateway.getMetadata().getAnnotations(), Map.of());
        int min;
        int max;
        try {
            min = intAnnotation(annotations, MIN_REPLICAS_ANNOTATION, DEFAULT_MIN_REPLICAS);
            max = intAnnotation(annotations, MAX_REPLICAS_ANNOTATION, Math.max(DEFAULT_MAX_REPLICAS, min));
        } catch (IllegalArgumentException e) {
            return new Invalid("Invalid", e.getMessage());
        }
        if (min < 1 || max < min) {
            return new Invalid("Invalid", "replica bounds must satisfy 1 <= " + MIN_REPLICAS_ANNOTATION + " ("
                    + min + ") <= " + MAX_REPLICAS_ANNOTATION + " (" + max + ")");
        }
        return new Valid(min, max);
    }

    private static int intAnnotation(Map<String, String> annotations, String key, int defaultValue) {
        String v = annotations.get(key);
        if (v == null || v.isBlank()) {
            return defaultValue;
        }
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("annotation " + key + " must be an integer, not \"" + v + "\"");
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> spec(GenericKubernetesResource gateway) {
        Object spec = gateway.getAdditionalProperties().get("spec");
        return spec instanceof Map<?, ?> m ? (Map<String, Object>) m : Map.of();
    }
}
