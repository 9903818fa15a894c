package dev.ambient.xds.discovery;

import com.google.protobuf.Message;
import dev.ambient.xds.model.MeshModel;
import dev.ambient.xds.model.MeshSnapshot;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Alternative;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * A model the tests set by hand. Enabled only by {@link DiscoveryTestProfile} (an alternative
 * without priority), so other tests of the module keep the real model.
 */
@Alternative
@ApplicationScoped
public class MutableMeshModel implements MeshModel {

    private final List<Consumer<MeshSnapshot>> listeners = new CopyOnWriteArrayList<>();
    private volatile MeshSnapshot current = MeshSnapshot.EMPTY;
    private volatile boolean synced = true;
    private long generation;

    @Override
    public MeshSnapshot current() {
        return current;
    }

    @Override
    public void addListener(Consumer<MeshSnapshot> listener) {
        listeners.add(listener);
    }

    @Override
    public boolean synced() {
        return synced;
    }

    public void setSynced(boolean synced) {
        this.synced = synced;
    }

    /** Builds a snapshot of these resources (not yet published). */
    public synchronized MeshSnapshot build(Collection<? extends Message> resources) {
        return MeshSnapshot.of(resources, ++generation);
    }

    /** Publishes a snapshot to the listeners, as a source would. */
    public void publish(MeshSnapshot s) {
        current = s;
        for (Consumer<MeshSnapshot> l : listeners) {
            l.accept(s);
        }
    }

    public MeshSnapshot set(Collection<? extends Message> resources) {
        MeshSnapshot s = build(resources);
        publish(s);
        return s;
    }
}
