package dev.ambient.ca.auth;

import dev.ambient.ca.Refusal;
import dev.ambient.ca.Refusal.Reason;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.util.Optional;

/** Pods from the API server, read fresh each time: a pod's node is what the decision rests on. */
public final class KubernetesPodDirectory implements PodDirectory {

    private final KubernetesClient client;

    public KubernetesPodDirectory(KubernetesClient client) {
        this.client = client;
    }

    @Override
    public Optional<PodPlacement> find(String namespace, String name) {
        Pod pod;
        try {
            pod = client.pods().inNamespace(namespace).withName(name).get();
        } catch (KubernetesClientException e) {
            throw new Refusal(Reason.KUBERNETES_UNAVAILABLE, "cannot look up pod " + namespace + "/" + name
                    + ": the Kubernetes API did not answer (" + (e.getCode() > 0 ? "HTTP " + e.getCode() : e.getMessage())
                    + "); try again later", e);
        }
        return Optional.ofNullable(pod).map(KubernetesPodDirectory::placement);
    }

    static PodPlacement placement(Pod pod) {
        var spec = pod.getSpec();
        String serviceAccount = spec == null ? null : spec.getServiceAccountName();
        if (serviceAccount == null || serviceAccount.isEmpty()) {
            serviceAccount = spec != null && spec.getServiceAccount() != null && !spec.getServiceAccount().isEmpty()
                    ? spec.getServiceAccount() : "default";
        }
        String node = spec == null || spec.getNodeName() == null || spec.getNodeName().isEmpty() ? null : spec.getNodeName();
        return new PodPlacement(pod.getMetadata().getNamespace(), pod.getMetadata().getName(), serviceAccount, node);
    }
}
