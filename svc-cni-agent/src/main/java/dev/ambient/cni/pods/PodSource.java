package dev.ambient.cni.pods;

import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Pod;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

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

    /** From the cache only: never blocks (it runs on the enrol thread). */
    Optional<Namespace> namespace(String name);

    /** From the cache only: never blocks (it runs on the enrol thread). */
    Optional<Pod> pod(String namespace, String name);

    /** A pod and its namespace, as a CNI ADD needs them. */
    record Lookup(Optional<Pod> pod, Optional<Namespace> namespace) {
    }

    /**
     * For a CNI ADD, which can come before the watch shows its pod: the cache, and where it has
     * nothing, whatever else the source can ask, off the caller's thread and bounded in time (the
     * future fails with a reason then).
     */
    default CompletableFuture<Lookup> lookup(String namespace, String name) {
        return CompletableFuture.completedFuture(new Lookup(pod(namespace, name), namespace(namespace)));
    }

    @Override
    void close();
}
