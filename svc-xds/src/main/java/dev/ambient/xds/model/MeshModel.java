package dev.ambient.xds.model;

import java.util.function.Consumer;

/**
 * The current mesh configuration computed from a source (the Kubernetes API, or a directory of
 * Kubernetes-style YAML). Discovery streams read it; listeners hear of every new snapshot.
 */
public interface MeshModel {

    MeshSnapshot current();

    /** Called after each new snapshot, on the model's thread; must be quick. */
    void addListener(Consumer<MeshSnapshot> listener);

    /** True once the source has been read completely at least once (for readiness). */
    boolean synced();
}
