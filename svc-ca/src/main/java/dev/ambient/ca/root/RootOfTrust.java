package dev.ambient.ca.root;

import dev.ambient.ca.metrics.CaMetrics;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Event;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * The root of trust in use. Empty until the first successful load; after that it only ever
 * changes to another loaded root, so an outage of the store never takes it away.
 * Every change is announced as a CDI event carrying the new {@link LoadedRoot}.
 */
@ApplicationScoped
public class RootOfTrust {

    private static final Logger LOG = Logger.getLogger(RootOfTrust.class);

    private final Event<LoadedRoot> changes;
    private final CaMetrics metrics;
    private volatile LoadedRoot current;
    private volatile String problem = "the root of trust has not been loaded yet";

    public RootOfTrust(Event<LoadedRoot> changes, CaMetrics metrics) {
        this.changes = changes;
        this.metrics = metrics;
    }

    public Optional<LoadedRoot> current() {
        return Optional.ofNullable(current);
    }

    /** Why the last load failed, or null when it succeeded. */
    public String problem() {
        return problem;
    }

    /** Makes {@code root} the one in use; does nothing when it equals the current one. */
    public void install(LoadedRoot root) {
        problem = null;
        LoadedRoot previous = current;
        if (root.sameAs(previous)) {
            return;
        }
        current = root;
        metrics.rootLoaded(root.authority().chainToRoot().getFirst(), root.authority().root());
        LOG.infof(previous == null ? "root of trust loaded: %s" : "root of trust changed: %s", root.describe());
        changes.fire(root);
    }

    /** Records why loading failed; the current root, if any, stays in use. */
    public void failed(String why) {
        problem = why;
    }
}
