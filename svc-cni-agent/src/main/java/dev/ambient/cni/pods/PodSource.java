package dev.ambient.cni.pods;

import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Pod;
import java.util.List;
import java.util.Optional;

/**
 * Where the agent learns about pods and namespaces: the Kubernetes API (informers) or a directory
 * of Kubernetes-style YAML (the mesh in a box). Reads are from a local cache and cheap; changes are
 * announced through the listener given to {@link #start}, which must not block.
 */
public interface PodSource extends AutoCloseable {

    void start(Runnable onChange);

    /** True once the first full listing is in: before that, absence proves nothing. */
    boolean synced();

    /** Pods scheduled on {@code node}. */
    List<Pod> podsOn(String node);

    Optional<Namespace> namespace(String name);

    /** One pod; the Kubernetes source asks the API when its cache does not have it yet. */
    Optional<Pod> pod(String namespace, String name);

    @Override
    void close();
}
