package dev.ambient.waypoint.state;

import java.util.concurrent.atomic.AtomicReference;
import org.jboss.logging.Logger;

/** The current {@link WaypointState}, read by the data path on every request, replaced whole by the configuration stream. */
public final class StateStore {

    private static final Logger LOG = Logger.getLogger(StateStore.class);

    private final AtomicReference<WaypointState> current = new AtomicReference<>(WaypointState.EMPTY);
    private volatile boolean configured;

    public WaypointState current() {
        return current.get();
    }

    /** True once a first configuration arrived (readiness). */
    public boolean configured() {
        return configured;
    }

    public void replace(WaypointState next) {
        current.set(next);
        if (!configured) {
            LOG.infof("configuration: first state with %d services, %d workloads, %d route tables, %d L7 policies",
                    next.services().size(), next.workloads().size(), next.routeTables(), next.policies().size());
        } else {
            LOG.debugf("configuration: %d services, %d workloads, %d route tables, %d L7 policies",
                    next.services().size(), next.workloads().size(), next.routeTables(), next.policies().size());
        }
        configured = true;
    }
}
