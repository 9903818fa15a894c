package dev.ambient.ztunnel.state;

import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * Holds the current {@link StateSnapshot}. Readers (the proxies) call {@link #current()}, a
 * single volatile read, and keep using the snapshot they got for the whole connection setup.
 * Writers (the local file, later the discovery stream) {@link #replace} it wholesale.
 *
 * <p>Replacements are serialised, and after each swap every listener is called on the updating
 * thread, in registration order, with the new snapshot; listeners must be quick (hand heavy work
 * to another thread). A listener that throws is logged and does not stop the others.
 */
public final class WorkloadStore {

    private static final Logger LOG = Logger.getLogger(WorkloadStore.class);

    private volatile StateSnapshot current;
    private final List<Consumer<StateSnapshot>> listeners = new CopyOnWriteArrayList<>();

    public WorkloadStore() {
        this(StateSnapshot.EMPTY);
    }

    public WorkloadStore(StateSnapshot initial) {
        this.current = Objects.requireNonNull(initial, "initial");
    }

    /** The snapshot in force now. */
    public StateSnapshot current() {
        return current;
    }

    /** Swaps in {@code next}, then tells every listener. */
    public synchronized void replace(StateSnapshot next) {
        current = Objects.requireNonNull(next, "next");
        for (Consumer<StateSnapshot> listener : listeners) {
            try {
                listener.accept(next);
            } catch (RuntimeException e) {
                LOG.errorf(e, "State listener %s failed", listener);
            }
        }
    }

    /** Registers a listener for future swaps (it is not called with the current snapshot). */
    public void addListener(Consumer<StateSnapshot> listener) {
        listeners.add(Objects.requireNonNull(listener, "listener"));
    }

    public void removeListener(Consumer<StateSnapshot> listener) {
        listeners.remove(listener);
    }
}
