package dev.ambient.xds.source;

import dev.ambient.discovery.ResourceTypes;
import dev.ambient.xds.model.MeshSnapshot;
import dev.ambient.xds.translate.MeshInput;
import dev.ambient.xds.translate.MeshTranslator;
import dev.ambient.xds.translate.Problem;
import dev.ambient.xds.translate.Translation;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * What every source shares: one model thread that recomputes the snapshot (debounced: events
 * within {@code debounce} of the first one are folded into one recomputation), publishes it only
 * when some resource changed, notifies listeners on that thread and logs problems as they appear
 * and disappear. Nothing here runs on an event loop.
 */
abstract class AbstractMeshSource implements MeshSource {

    private static final List<String> TYPES = List.of(ResourceTypes.WORKLOAD, ResourceTypes.SERVICE,
            ResourceTypes.AUTHORIZATION, ResourceTypes.PEER_AUTHENTICATION, ResourceTypes.SERVICE_ROUTES,
            ResourceTypes.L7_AUTHORIZATION, ResourceTypes.L7_AUTHENTICATION);

    protected final Logger log = Logger.getLogger(getClass());
    protected final ScheduledExecutorService executor;
    private final MeshTranslator translator;
    private final long debounceMillis;
    private final List<Consumer<MeshSnapshot>> listeners = new CopyOnWriteArrayList<>();
    private final AtomicBoolean pending = new AtomicBoolean();
    private volatile MeshSnapshot current = MeshSnapshot.EMPTY;
    private volatile List<Problem> problems = List.of();
    private volatile boolean synced;
    private volatile boolean closed;
    private long generation;

    AbstractMeshSource(String threadName, MeshTranslator translator, Duration debounce) {
        this.translator = Objects.requireNonNull(translator, "translator");
        this.debounceMillis = Math.max(0, debounce.toMillis());
        this.executor = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, threadName);
            t.setDaemon(true);
            return t;
        });
    }

    /** The objects as they are now; runs on the model thread. */
    protected abstract MeshInput collect();

    /** Problems of the source itself (e.g. unreadable files), merged with the translation's. */
    protected List<Problem> sourceProblems() {
        return List.of();
    }

    /** True once the source has been read completely. */
    protected abstract boolean sourceSynced();

    @Override
    public MeshSnapshot current() {
        return current;
    }

    @Override
    public void addListener(Consumer<MeshSnapshot> listener) {
        listeners.add(Objects.requireNonNull(listener, "listener"));
    }

    @Override
    public boolean synced() {
        return synced;
    }

    @Override
    public List<Problem> problems() {
        return problems;
    }

    protected boolean isClosed() {
        return closed;
    }

    /** Asks for a recomputation soon; many requests within the debounce interval make one. */
    protected void requestRecompute() {
        if (closed || !pending.compareAndSet(false, true)) {
            return;
        }
        try {
            executor.schedule(this::recompute, debounceMillis, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            pending.set(false);
        }
    }

    /** Recomputes now; call on the model thread only. */
    protected void recompute() {
        pending.set(false);
        if (closed) {
            return;
        }
        try {
            boolean complete = sourceSynced();
            MeshInput input = collect();
            Translation t = translator.translate(input, generation + 1);
            List<Problem> all = new ArrayList<>(sourceProblems());
            all.addAll(t.problems());
            all.sort(null);
            logChanges(problems, all);
            problems = List.copyOf(all);
            if (!sameResources(current, t.snapshot())) {
                generation++;
                current = t.snapshot();
                log.debugf("snapshot %d: %d workloads, %d services, %d policies", generation,
                        current.resources(ResourceTypes.WORKLOAD).size(), current.resources(ResourceTypes.SERVICE).size(),
                        current.resources(ResourceTypes.AUTHORIZATION).size());
                for (Consumer<MeshSnapshot> l : listeners) {
                    try {
                        l.accept(current);
                    } catch (RuntimeException e) {
                        log.warn("mesh snapshot listener failed", e);
                    }
                }
            }
            if (complete && !synced) {
                synced = true;
                log.infof("mesh model synced: %d workloads, %d services", current.resources(ResourceTypes.WORKLOAD)
                        .size(), current.resources(ResourceTypes.SERVICE).size());
            }
        } catch (RuntimeException e) {
            log.error("recomputing the mesh snapshot failed; keeping the previous one", e);
        }
    }

    private static boolean sameResources(MeshSnapshot a, MeshSnapshot b) {
        for (String type : TYPES) {
            Map<String, MeshSnapshot.Entry> x = a.resources(type);
            Map<String, MeshSnapshot.Entry> y = b.resources(type);
            if (x.size() != y.size()) {
                return false;
            }
            for (Map.Entry<String, MeshSnapshot.Entry> e : x.entrySet()) {
                MeshSnapshot.Entry other = y.get(e.getKey());
                if (other == null || !other.version().equals(e.getValue().version())
                        || !other.resource().equals(e.getValue().resource())) {
                    return false;
                }
            }
        }
        return true;
    }

    private void logChanges(List<Problem> before, List<Problem> after) {
        Set<Problem> old = new HashSet<>(before);
        Set<Problem> now = new HashSet<>(after);
        for (Problem p : after) {
            if (!old.contains(p)) {
                log.warnf("%s: %s", p.resource(), p.reason());
            }
        }
        for (Problem p : before) {
            if (!now.contains(p)) {
                log.infof("resolved: %s: %s", p.resource(), p.reason());
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        executor.shutdownNow();
    }
}
