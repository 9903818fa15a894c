package dev.ambient.ca.root;

/** Where the root of trust is kept: a Kubernetes Secret or a directory. */
public interface RootSource {

    /**
     * Reads the root. When none exists yet and {@code createIfAbsent} is set, makes one and
     * stores it; otherwise answers null when there is none.
     *
     * @throws IllegalArgumentException when the stored root is unusable (never overwritten)
     * @throws RuntimeException when the store cannot be reached
     */
    LoadedRoot load(boolean createIfAbsent);

    /** Where it looks, for logs and the readiness check. */
    String describe();
}
