package dev.ambient.ca.auth;

import java.util.Optional;

/** Looks pods up. Blocking: call it on a worker thread. */
public interface PodDirectory {

    /**
     * @throws dev.ambient.ca.Refusal {@code KUBERNETES_UNAVAILABLE} when the pod cannot be looked up now
     */
    Optional<PodPlacement> find(String namespace, String name);
}
