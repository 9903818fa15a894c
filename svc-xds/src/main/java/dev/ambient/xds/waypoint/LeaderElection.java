package dev.ambient.xds.waypoint;

import io.fabric8.kubernetes.api.model.coordination.v1.Lease;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.extended.leaderelection.LeaderCallbacks;
import io.fabric8.kubernetes.client.extended.leaderelection.LeaderElectionConfigBuilder;
import io.fabric8.kubernetes.client.extended.leaderelection.LeaderElector;
import io.fabric8.kubernetes.client.extended.leaderelection.resourcelock.LeaseLock;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * Competes for a coordination.k8s.io Lease with fabric8's {@link LeaderElector}, so that only one
 * xds replica runs the waypoint controller. It first checks that the API server answers (and logs
 * once if not), because the elector itself logs an error at every retry. When leadership is lost
 * or the election fails it competes again with a new elector (one elector elects only once).
 */
final class LeaderElection {

    private static final Logger LOG = Logger.getLogger(LeaderElection.class);

    // client-go's defaults
    static final Duration LEASE_DURATION = Duration.ofSeconds(15);
    static final Duration RENEW_DEADLINE = Duration.ofSeconds(10);
    static final Duration RETRY_PERIOD = Duration.ofSeconds(2);

    private final KubernetesClient client;
    private final String namespace;
    private final String leaseName;
    private final String identity;
    private final Duration unreachableRetry;
    private final ScheduledExecutorService scheduler;
    private final ExecutorService electorThread;
    private final Runnable onStartLeading;
    private final Runnable onStopLeading;

    private volatile boolean stopped;
    private volatile CompletableFuture<?> running;
    private boolean unreachableLogged;

    LeaderElection(KubernetesClient client, String namespace, String leaseName, Duration unreachableRetry,
            ScheduledExecutorService scheduler, ExecutorService electorThread, Runnable onStartLeading,
            Runnable onStopLeading) {
        this.client = client;
        this.namespace = namespace;
        this.leaseName = leaseName;
        this.identity = identity();
        this.unreachableRetry = unreachableRetry;
        this.scheduler = scheduler;
        this.electorThread = electorThread;
        this.onStartLeading = onStartLeading;
        this.onStopLeading = onStopLeading;
    }

    /** The pod's name (unique in the cluster; a restarted container takes its lease back at once). */
    static String identity() {
        String pod = System.getenv("POD_NAME");
        if (pod != null && !pod.isBlank()) {
            return pod;
        }
        String host = System.getenv("HOSTNAME");
        return (host == null || host.isBlank() ? "xds" : host) + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    String identityName() {
        return identity;
    }

    void start() {
        electorThread.execute(this::compete);
    }

    private void compete() {
        if (stopped) {
            return;
        }
        try {
            client.resources(Lease.class).inNamespace(namespace).withName(leaseName).get();
        } catch (KubernetesClientException e) {
            if (stopped) {
                return;
            }
            if (!unreachableLogged) {
                LOG.warnf("leader election: cannot read Lease %s/%s (%s); waypoint controller idle, retrying every %ss",
                        namespace, leaseName, rootMessage(e), unreachableRetry.toSeconds());
                unreachableLogged = true;
            } else {
                LOG.debugf("leader election: Lease %s/%s still unreadable: %s", namespace, leaseName, rootMessage(e));
            }
            later(unreachableRetry);
            return;
        }
        unreachableLogged = false;
        LOG.infof("leader election: %s competes for Lease %s/%s", identity, namespace, leaseName);
        LeaderElector elector = new LeaderElector(client, new LeaderElectionConfigBuilder()
                .withName(leaseName)
                .withLock(new LeaseLock(namespace, leaseName, identity))
                .withLeaseDuration(LEASE_DURATION)
                .withRenewDeadline(RENEW_DEADLINE)
                .withRetryPeriod(RETRY_PERIOD)
                .withReleaseOnCancel(true)
                .withLeaderCallbacks(new LeaderCallbacks(
                        () -> {
                            LOG.infof("leader election: %s holds Lease %s/%s and runs the waypoint controller",
                                    identity, namespace, leaseName);
                            onStartLeading.run();
                        },
                        () -> {
                            LOG.infof("leader election: %s no longer holds Lease %s/%s; waypoint controller stops",
                                    identity, namespace, leaseName);
                            onStopLeading.run();
                        },
                        leader -> LOG.infof("leader election: the waypoint controller's leader is now %s",
                                leader == null || leader.isBlank() ? "nobody (lease released)" : leader)))
                .build(), electorThread);
        CompletableFuture<?> future = elector.start();
        running = future;
        future.whenComplete((v, t) -> {
            if (!stopped) {
                LOG.infof("leader election: round ended (%s); competing again",
                        t == null ? "lease lost" : rootMessage(t));
                later(RETRY_PERIOD);
            }
        });
    }

    private void later(Duration delay) {
        if (!stopped) {
            scheduler.schedule(() -> electorThread.execute(this::compete), delay.toMillis(), TimeUnit.MILLISECONDS);
        }
    }

    /** Stops competing and releases the Lease if held, so that another replica takes over at once. */
    void stop() {
        stopped = true;
        CompletableFuture<?> r = running;
        if (r != null) {
            r.cancel(true);
        }
    }

    static String rootMessage(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        return c == t ? String.valueOf(t.getMessage()) : t.getMessage() + ": " + c;
    }
}
