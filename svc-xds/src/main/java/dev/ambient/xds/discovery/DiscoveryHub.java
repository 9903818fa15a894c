package dev.ambient.xds.discovery;

import com.google.protobuf.Any;
import dev.ambient.discovery.ResourceTypes;
import dev.ambient.proto.discovery.Resource;
import dev.ambient.xds.model.MeshModel;
import dev.ambient.xds.model.MeshSnapshot;
import dev.ambient.xds.model.MeshSnapshot.Entry;
import io.quarkus.runtime.Startup;
import jakarta.annotation.PreDestroy;
import jakarta.annotation.PostConstruct;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/**
 * The shared side of the discovery server: the latest snapshot, the connected clients, the
 * threads that push to them, and the caches every stream uses.
 *
 * <p>A new snapshot from the {@link MeshModel} is only recorded on the model's thread
 * (latest-wins: snapshots arriving faster than they are dispatched are coalesced, never queued).
 * One dispatcher thread diffs it against the previous one (O(resources) once per snapshot, not
 * per client) and tells each client which names changed; each client then re-checks just those
 * names on the push pool. No work happens on Vert.x event loops.
 */
@Startup
@ApplicationScoped
public class DiscoveryHub {

    private static final Logger LOG = Logger.getLogger(DiscoveryHub.class);

    /** The types a snapshot is diffed on. */
    static final List<String> TYPES = List.of(ResourceTypes.WORKLOAD, ResourceTypes.SERVICE,
            ResourceTypes.AUTHORIZATION, ResourceTypes.PEER_AUTHENTICATION, ResourceTypes.SERVICE_ROUTES,
            ResourceTypes.L7_AUTHORIZATION, ResourceTypes.L7_AUTHENTICATION);

    /** The types a waypoint's view depends on. */
    private static final Set<String> WAYPOINT_INPUTS = Set.of(ResourceTypes.WORKLOAD, ResourceTypes.SERVICE,
            ResourceTypes.SERVICE_ROUTES, ResourceTypes.L7_AUTHORIZATION, ResourceTypes.L7_AUTHENTICATION);

    @Inject
    MeshModel model;

    @Inject
    DiscoveryMetrics metrics;

    @ConfigProperty(name = "xds.discovery.push-threads", defaultValue = "0")
    int pushThreads;

    /** Pending changed names per type above which a client re-diffs its whole view instead. */
    @ConfigProperty(name = "xds.discovery.max-dirty-names", defaultValue = "4096")
    int maxDirtyNames;

    /** Bytes of resources above which a response is cut and continued after its ACK. */
    @ConfigProperty(name = "xds.discovery.max-response-bytes", defaultValue = "3000000")
    long maxResponseBytes;

    private final Set<ClientConnection> clients = ConcurrentHashMap.newKeySet();
    private final Set<ClientConnection> waitingForSync = ConcurrentHashMap.newKeySet();
    private final AtomicReference<MeshSnapshot> pending = new AtomicReference<>();
    private final AtomicLong pendingSince = new AtomicLong();
    private final AtomicBoolean dispatchScheduled = new AtomicBoolean();
    private final AtomicLong nonces = new AtomicLong();
    private final String noncePrefix = Long.toHexString(System.nanoTime() & 0xffffffL) + "-";
    private final AtomicInteger connectionIds = new AtomicInteger();
    /** Packed resources, type -> name -> last packed version (so a change is packed once, not per client). */
    private final Map<String, ConcurrentHashMap<String, Resource>> packed = new ConcurrentHashMap<>();

    private volatile MeshSnapshot latest = MeshSnapshot.EMPTY;
    private volatile long latestArrival = System.nanoTime();
    /** Touched only on the dispatcher thread. */
    private MeshSnapshot dispatched = MeshSnapshot.EMPTY;
    private volatile WaypointIndex waypointIndex;

    private ExecutorService dispatcher;
    private ExecutorService pushPool;
    private ScheduledExecutorService ticker;

    @PostConstruct
    void start() {
        dispatcher = Executors.newSingleThreadExecutor(named("xds-dispatch", new AtomicInteger()));
        int n = pushThreads > 0 ? pushThreads : Math.max(2, Runtime.getRuntime().availableProcessors());
        pushPool = Executors.newFixedThreadPool(n, named("xds-push-", new AtomicInteger()));
        ticker = Executors.newSingleThreadScheduledExecutor(named("xds-sync-wait", new AtomicInteger()));
        ticker.scheduleWithFixedDelay(this::releaseWaitingForSync, 200, 200, TimeUnit.MILLISECONDS);
        model.addListener(this::onSnapshot);
        onSnapshot(model.current());
        LOG.infof("xds: delta discovery ready (%d push threads)", n);
    }

    @PreDestroy
    void stop() {
        for (ClientConnection c : clients) {
            c.shutdown();
        }
        ticker.shutdownNow();
        dispatcher.shutdownNow();
        pushPool.shutdownNow();
    }

    private static ThreadFactory named(String prefix, AtomicInteger seq) {
        return r -> {
            Thread t = new Thread(r, prefix.endsWith("-") ? prefix + seq.incrementAndGet() : prefix);
            t.setDaemon(true);
            return t;
        };
    }

    // ---- snapshots ----------------------------------------------------------------------------

    /** The model's listener: record and hand off; quick, never blocks the model's thread. */
    void onSnapshot(MeshSnapshot s) {
        if (s == null) {
            return;
        }
        pendingSince.compareAndSet(0, System.nanoTime());
        pending.accumulateAndGet(s, (cur, next) -> cur == null || next.generation() >= cur.generation() ? next : cur);
        if (dispatchScheduled.compareAndSet(false, true)) {
            dispatcher.execute(this::dispatch);
        }
    }

    private void dispatch() {
        dispatchScheduled.set(false);
        MeshSnapshot next = pending.getAndSet(null);
        long arrival = pendingSince.getAndSet(0);
        if (next == null || next == dispatched) {
            return;
        }
        if (next.generation() < dispatched.generation()) {
            LOG.debugf("xds: ignoring snapshot %d older than %d", next.generation(), dispatched.generation());
            return;
        }
        Map<String, Set<String>> changed = diff(dispatched, next);
        for (Map.Entry<String, Set<String>> e : changed.entrySet()) {
            Map<String, Resource> cache = packed.get(e.getKey());
            if (cache != null) {
                Map<String, Entry> now = next.resources(e.getKey());
                e.getValue().forEach(name -> {
                    if (!now.containsKey(name)) {
                        cache.remove(name);
                    }
                });
            }
        }
        dispatched = next;
        latestArrival = arrival == 0 ? System.nanoTime() : arrival;
        latest = next;
        if (changed.isEmpty()) {
            return;
        }
        LOG.debugf("xds: snapshot %d changes %s", next.generation(), counts(changed));
        boolean waypointInputs = changed.keySet().stream().anyMatch(WAYPOINT_INPUTS::contains);
        long since = latestArrival;
        for (ClientConnection c : clients) {
            pushPool.execute(() -> c.onSnapshot(changed, waypointInputs, since));
        }
    }

    /** Names added, changed or removed between two snapshots, per type (types with none are absent). */
    static Map<String, Set<String>> diff(MeshSnapshot before, MeshSnapshot after) {
        Map<String, Set<String>> out = new HashMap<>();
        for (String type : TYPES) {
            Map<String, Entry> a = before.resources(type);
            Map<String, Entry> b = after.resources(type);
            if (a == b) {
                continue;
            }
            Set<String> names = new HashSet<>();
            for (Entry e : b.values()) {
                Entry old = a.get(e.name());
                if (old == null || !old.version().equals(e.version())) {
                    names.add(e.name());
                }
            }
            for (String n : a.keySet()) {
                if (!b.containsKey(n)) {
                    names.add(n);
                }
            }
            if (!names.isEmpty()) {
                out.put(type, names);
            }
        }
        return out;
    }

    private static Map<String, Integer> counts(Map<String, Set<String>> changed) {
        Map<String, Integer> m = new HashMap<>();
        changed.forEach((t, n) -> m.put(DiscoveryMetrics.shortType(t), n.size()));
        return m;
    }

    MeshSnapshot latest() {
        return latest;
    }

    boolean synced() {
        return model.synced();
    }

    /** The waypoint lookups of a snapshot, built at most once per snapshot. */
    WaypointIndex waypointIndex(MeshSnapshot s) {
        WaypointIndex idx = waypointIndex;
        if (idx != null && idx.snapshot() == s) {
            return idx;
        }
        synchronized (this) {
            idx = waypointIndex;
            if (idx == null || idx.snapshot() != s) {
                idx = new WaypointIndex(s);
                waypointIndex = idx;
            }
            return idx;
        }
    }

    /** The wire form of an entry, packed once per version and shared by every client. */
    Resource resource(String typeUrl, Entry e) {
        ConcurrentHashMap<String, Resource> cache = packed.computeIfAbsent(typeUrl, t -> new ConcurrentHashMap<>());
        Resource r = cache.get(e.name());
        if (r != null && r.getVersion().equals(e.version())) {
            return r;
        }
        r = Resource.newBuilder().setName(e.name()).setVersion(e.version()).setResource(Any.pack(e.resource()))
                .build();
        cache.put(e.name(), r);
        return r;
    }

    // ---- clients ------------------------------------------------------------------------------

    String nextNonce() {
        return noncePrefix + Long.toHexString(nonces.incrementAndGet());
    }

    int nextConnectionId() {
        return connectionIds.incrementAndGet();
    }

    ExecutorService pushPool() {
        return pushPool;
    }

    DiscoveryMetrics metrics() {
        return metrics;
    }

    int maxDirtyNames() {
        return maxDirtyNames;
    }

    long maxResponseBytes() {
        return maxResponseBytes;
    }

    void register(ClientConnection c) {
        clients.add(c);
        metrics.connected(c.roleTag(), 1);
    }

    void unregister(ClientConnection c) {
        waitingForSync.remove(c);
        if (clients.remove(c)) {
            metrics.connected(c.roleTag(), -1);
        }
    }

    void waitForSync(ClientConnection c) {
        waitingForSync.add(c);
    }

    private void releaseWaitingForSync() {
        if (waitingForSync.isEmpty() || !model.synced()) {
            return;
        }
        for (ClientConnection c : List.copyOf(waitingForSync)) {
            waitingForSync.remove(c);
            pushPool.execute(c::flushAll);
        }
    }

    Collection<ClientConnection> clients() {
        return List.copyOf(clients);
    }
}
