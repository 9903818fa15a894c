package dev.ambient.xds.waypoint;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ListOptionsBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/**
 * The waypoint controller: for every {@code gateway.networking.k8s.io/v1} Gateway of class
 * {@code istio-waypoint} it keeps a ServiceAccount, Deployment, Service, HorizontalPodAutoscaler
 * (and PodDisruptionBudget) in the Gateway's namespace, and writes the Gateway's status.
 *
 * <p>Threads: informer callbacks only put Gateway keys in a queue; every Kubernetes call of the
 * controller runs on its own single thread ({@code waypoint-controller}), never on an event loop,
 * and keys are deduplicated while queued. A failed reconcile is retried with backoff; every
 * Gateway is also reconciled each {@code xds.waypoint.resync-period}, and objects of ours whose
 * Gateway is gone are deleted then.
 *
 * <p>Startup never waits for the API server: when it cannot be reached, or the Gateway CRD is not
 * installed, the controller logs it once and tries again every {@code xds.waypoint.retry-period}.
 */
@ApplicationScoped
public class WaypointController {

    private static final Logger LOG = Logger.getLogger(WaypointController.class);

    public static final String LEASE_NAME = "ambient-xds-waypoint-controller";
    private static final String GATEWAY_INDEX = "gateway";
    private static final long INFORMER_SYNC_TIMEOUT_SECONDS = 60;

    @Inject
    KubernetesClient client;

    @Inject
    WaypointConfig config;

    @Inject
    MeterRegistry registry;

    @ConfigProperty(name = "xds.system-namespace", defaultValue = "istio-system")
    String systemNamespace;

    private final DecisionLog decisions = new DecisionLog();
    private final Set<String> queued = ConcurrentHashMap.newKeySet();
    private final AtomicBoolean leading = new AtomicBoolean();
    private volatile int epoch;
    private volatile boolean active;
    private volatile boolean watching;

    private ScheduledExecutorService executor;
    private ExecutorService electorThread;
    private LeaderElection election;
    private WaypointReconciler reconciler;

    // Touched only on the controller thread.
    private volatile SharedIndexInformer<GenericKubernetesResource> gateways;
    // Written on the controller thread, read by informer callbacks too.
    private final List<SharedIndexInformer<? extends HasMetadata>> managed = new CopyOnWriteArrayList<>();
    private ScheduledFuture<?> resync;
    private final Map<String, Integer> failures = new HashMap<>();
    private volatile String lastWatchProblem;

    void onStart(@Observes StartupEvent event) {
        if (!config.enabled()) {
            LOG.info("waypoint controller disabled (xds.waypoint.enabled=false)");
            return;
        }
        executor = Executors.newSingleThreadScheduledExecutor(
                Thread.ofPlatform().name("waypoint-controller").daemon().factory());
        reconciler = new WaypointReconciler(client, config, decisions);
        registry.gauge("xds_waypoint_controller_leader", leading, b -> b.get() ? 1 : 0);
        if (config.leaderElection()) {
            electorThread = Executors.newSingleThreadExecutor(
                    Thread.ofPlatform().name("waypoint-leader-election").daemon().factory());
            election = new LeaderElection(client, systemNamespace, LEASE_NAME, config.retryPeriod(), executor,
                    electorThread, () -> submit(this::activate), () -> submit(this::deactivate));
            election.start();
        } else {
            LOG.info("waypoint controller: leader election off (xds.waypoint.leader-election=false), this replica acts");
            submit(this::activate);
        }
    }

    void onStop(@Observes ShutdownEvent event) {
        if (executor == null) {
            return;
        }
        if (election != null) {
            election.stop();
        }
        try {
            executor.submit(this::deactivate).get(5, TimeUnit.SECONDS);
        } catch (Exception e) {
            LOG.debugf("waypoint controller: stopping: %s", e);
        }
        executor.shutdownNow();
        if (electorThread != null) {
            electorThread.shutdownNow();
        }
    }

    /** True while this replica runs the controller (leader, or leader election off). */
    public boolean isActive() {
        return active;
    }

    /** True once the controller watches Gateways (the API server answers and serves them). */
    public boolean isWatching() {
        return watching;
    }

    private void submit(Runnable task) {
        try {
            executor.execute(() -> {
                try {
                    task.run();
                } catch (RuntimeException e) {
                    LOG.errorf(e, "waypoint controller: unexpected error");
                }
            });
        } catch (RejectedExecutionException e) {
            LOG.debug("waypoint controller: shut down, task dropped");
        }
    }

    // ---- lifecycle, on the controller thread ----

    private void activate() {
        if (active) {
            return;
        }
        active = true;
        leading.set(true);
        int myEpoch = ++epoch;
        startWatching(myEpoch);
    }

    private void deactivate() {
        if (!active) {
            return;
        }
        active = false;
        watching = false;
        leading.set(false);
        epoch++;
        if (resync != null) {
            resync.cancel(false);
            resync = null;
        }
        if (gateways != null) {
            gateways.stop();
            gateways = null;
        }
        managed.forEach(SharedIndexInformer::stop);
        managed.clear();
        queued.clear();
        failures.clear();
        LOG.info("waypoint controller: stopped watching");
    }

    private void startWatching(int myEpoch) {
        if (!active || epoch != myEpoch) {
            return;
        }
        try {
            // Is the API server there, and does it serve Gateways? (404: the CRD is not installed.)
            client.genericKubernetesResources(WaypointGateway.CONTEXT).inAnyNamespace()
                    .list(new ListOptionsBuilder().withLimit(1L).build());
        } catch (KubernetesClientException e) {
            String problem = e.getCode() == 404
                    ? "the Gateway API CRD (gateways." + WaypointGateway.GROUP + ", " + WaypointGateway.VERSION
                            + ") is not installed"
                    : "cannot list Gateways: " + LeaderElection.rootMessage(e);
            watchProblem(problem);
            retryWatching(myEpoch);
            return;
        }
        try {
            SharedIndexInformer<GenericKubernetesResource> gw = client.genericKubernetesResources(WaypointGateway.CONTEXT)
                    .inAnyNamespace().runnableInformer(0);
            gw.exceptionHandler((started, t) -> started);
            gw.addEventHandler(gatewayHandler());
            gateways = gw;
            gw.start().toCompletableFuture().get(INFORMER_SYNC_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            for (Class<? extends HasMetadata> kind : WaypointReconciler.MANAGED_KINDS) {
                managed.add(managedInformer(kind));
            }
            for (SharedIndexInformer<? extends HasMetadata> inf : managed) {
                inf.start().toCompletableFuture().get(INFORMER_SYNC_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            }
        } catch (Exception e) {
            watchProblem("cannot start watching: " + LeaderElection.rootMessage(e));
            if (gateways != null) {
                gateways.stop();
                gateways = null;
            }
            managed.forEach(SharedIndexInformer::stop);
            managed.clear();
            retryWatching(myEpoch);
            return;
        }
        lastWatchProblem = null;
        watching = true;
        LOG.infof("waypoint controller: watching Gateways of class %s in all namespaces (%d known), resync every %ss",
                config.gatewayClass(), gateways.getStore().list().size(), config.resyncPeriod().toSeconds());
        long period = Math.max(1000, config.resyncPeriod().toMillis());
        resync = executor.scheduleWithFixedDelay(() -> {
            if (active && epoch == myEpoch) {
                resyncAll();
            }
        }, period, period, TimeUnit.MILLISECONDS);
        resyncAll();
    }

    /** Objects of ours, found by label, indexed by the Gateway they belong to (namespace/name). */
    private <T extends HasMetadata> SharedIndexInformer<T> managedInformer(Class<T> kind) {
        SharedIndexInformer<T> inf = client.resources(kind).inAnyNamespace()
                .withLabel(WaypointObjects.MANAGED_LABEL, WaypointObjects.MANAGED_VALUE).runnableInformer(0);
        inf.exceptionHandler((started, t) -> started);
        Function<T, List<String>> index = WaypointController::gatewayKeyOf;
        inf.addIndexers(Map.of(GATEWAY_INDEX, index));
        inf.addEventHandler(managedHandler());
        return inf;
    }

    private void watchProblem(String problem) {
        if (!problem.equals(lastWatchProblem)) {
            LOG.warnf("waypoint controller idle: %s; retrying every %ss", problem, config.retryPeriod().toSeconds());
            lastWatchProblem = problem;
        } else {
            LOG.debugf("waypoint controller still idle: %s", problem);
        }
    }

    private void retryWatching(int myEpoch) {
        executor.schedule(() -> {
            try {
                startWatching(myEpoch);
            } catch (RuntimeException e) {
                LOG.errorf(e, "waypoint controller: unexpected error while starting");
                retryWatching(myEpoch);
            }
        }, config.retryPeriod().toMillis(), TimeUnit.MILLISECONDS);
    }

    /** Every waypoint Gateway, and every Gateway that objects of ours point to (to delete orphans). */
    private void resyncAll() {
        for (GenericKubernetesResource g : gateways.getStore().list()) {
            if (config.gatewayClass().equals(WaypointGateway.gatewayClassName(g))) {
                enqueue(WaypointGateway.key(g));
            }
        }
        for (SharedIndexInformer<? extends HasMetadata> inf : managed) {
            for (HasMetadata o : inf.getStore().list()) {
                gatewayKeyOf(o).forEach(this::enqueue);
            }
        }
    }

    // ---- the queue ----

    private void enqueue(String key) {
        if (active && queued.add(key)) {
            submit(() -> {
                queued.remove(key);
                if (active) {
                    reconcile(key);
                }
            });
        }
    }

    private void reconcile(String key) {
        GenericKubernetesResource cached = gateways == null ? null : gateways.getStore().getByKey(key);
        try {
            WaypointReconciler.Outcome outcome = reconciler.reconcile(key, cached, managedExists(key));
            failures.remove(key);
            registry.counter("xds_waypoint_reconciles_total", "outcome", outcome.name().toLowerCase()).increment();
        } catch (RuntimeException e) {
            int attempt = failures.merge(key, 1, Integer::sum);
            long delay = Math.min(60, 1L << Math.min(attempt, 6));
            LOG.warnf("waypoint %s: reconcile failed (attempt %d), retrying in %ds: %s", key, attempt, delay,
                    LeaderElection.rootMessage(e));
            registry.counter("xds_waypoint_reconciles_total", "outcome", "error").increment();
            int myEpoch = epoch;
            executor.schedule(() -> {
                if (epoch == myEpoch) {
                    enqueue(key);
                }
            }, delay, TimeUnit.SECONDS);
        }
    }

    private boolean managedExists(String key) {
        for (SharedIndexInformer<? extends HasMetadata> inf : managed) {
            if (!inf.getIndexer().byIndex(GATEWAY_INDEX, key).isEmpty()) {
                return true;
            }
        }
        return false;
    }

    static List<String> gatewayKeyOf(HasMetadata o) {
        Map<String, String> labels = o.getMetadata().getLabels();
        String name = labels == null ? null : labels.get(WaypointObjects.GATEWAY_NAME_LABEL);
        return name == null ? List.of() : List.of(WaypointGateway.key(o.getMetadata().getNamespace(), name));
    }

    // ---- informer callbacks: never call Kubernetes here, only enqueue ----

    private ResourceEventHandler<GenericKubernetesResource> gatewayHandler() {
        return new ResourceEventHandler<>() {
            @Override
            public void onAdd(GenericKubernetesResource g) {
                changed(g, null);
            }

            @Override
            public void onUpdate(GenericKubernetesResource old, GenericKubernetesResource g) {
                changed(g, old);
            }

            @Override
            public void onDelete(GenericKubernetesResource g, boolean finalStateUnknown) {
                // Deleted: remove its objects (whatever its class was by then).
                String key = WaypointGateway.key(g);
                if (config.gatewayClass().equals(WaypointGateway.gatewayClassName(g)) || managedExists(key)) {
                    enqueue(key);
                }
            }
        };
    }

    private void changed(GenericKubernetesResource g, GenericKubernetesResource old) {
        String key = WaypointGateway.key(g);
        boolean ours = config.gatewayClass().equals(WaypointGateway.gatewayClassName(g));
        boolean wasOurs = old != null && config.gatewayClass().equals(WaypointGateway.gatewayClassName(old));
        if (ours || wasOurs || managedExists(key)) {
            enqueue(key);
        }
    }

    private <T extends HasMetadata> ResourceEventHandler<T> managedHandler() {
        return new ResourceEventHandler<>() {
            @Override
            public void onAdd(T o) {
                gatewayKeyOf(o).forEach(WaypointController.this::enqueue);
            }

            @Override
            public void onUpdate(T old, T o) {
                if (!Objects.equals(old.getMetadata().getResourceVersion(), o.getMetadata().getResourceVersion())) {
                    gatewayKeyOf(o).forEach(WaypointController.this::enqueue);
                }
            }

            @Override
            public void onDelete(T o, boolean finalStateUnknown) {
                gatewayKeyOf(o).forEach(WaypointController.this::enqueue);
            }
        };
    }
}
