package dev.ambient.cni.enrol;

import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Pod;
import java.util.Map;
import java.util.Optional;

/**
 * Which pods join the mesh, as in Istio ambient: a pod of this node whose namespace carries
 * {@code istio.io/dataplane-mode=ambient} (or that carries it itself), unless the pod says
 * {@code istio.io/dataplane-mode=none}; never a host-network pod (its namespace is the node's),
 * never a pod that has ended.
 */
public final class EnrolmentPolicy {

    public static final String LABEL = "istio.io/dataplane-mode";
    public static final String AMBIENT = "ambient";
    public static final String NONE = "none";

    /** The verdict and why, for the one log line per decision. */
    public record Decision(boolean enrol, String reason) {
    }

    private EnrolmentPolicy() {
    }

    public static Decision decide(Pod pod, Optional<Namespace> namespace, String node) {
        String podNode = pod.getSpec() == null ? null : pod.getSpec().getNodeName();
        if (podNode != null && !podNode.equals(node)) {
            return new Decision(false, "scheduled on node " + podNode);
        }
        if (pod.getSpec() != null && Boolean.TRUE.equals(pod.getSpec().getHostNetwork())) {
            return new Decision(false, "host network");
        }
        String phase = pod.getStatus() == null ? null : pod.getStatus().getPhase();
        if ("Succeeded".equals(phase) || "Failed".equals(phase)) {
            return new Decision(false, "pod " + phase.toLowerCase());
        }
        String podMode = label(pod.getMetadata().getLabels());
        if (NONE.equals(podMode)) {
            return new Decision(false, "pod label " + LABEL + "=none");
        }
        if (AMBIENT.equals(podMode)) {
            return new Decision(true, "pod label " + LABEL + "=ambient");
        }
        if (namespace.isEmpty()) {
            return new Decision(false, "namespace " + pod.getMetadata().getNamespace() + " unknown");
        }
        String nsMode = label(namespace.get().getMetadata().getLabels());
        if (AMBIENT.equals(nsMode)) {
            return new Decision(true, "namespace label " + LABEL + "=ambient");
        }
        return new Decision(false, "namespace " + namespace.get().getMetadata().getName() + " not in ambient mode");
    }

    private static String label(Map<String, String> labels) {
        return labels == null ? null : labels.get(LABEL);
    }
}
