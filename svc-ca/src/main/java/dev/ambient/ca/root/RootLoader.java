package dev.ambient.ca.root;

import dev.ambient.ca.config.CaConfig;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Instance;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * Loads the root at start and keeps it current. In Kubernetes mode loading runs in the
 * background and is retried until the API server answers, so the service starts (and is live)
 * without one; it is ready once the root is loaded. Afterwards the store is re-read now and
 * then to pick up a rotated root; failures then keep the root already loaded.
 */
@ApplicationScoped
public class RootLoader {

    private static final Logger LOG = Logger.getLogger(RootLoader.class);

    private final CaConfig config;
    private final RootOfTrust rootOfTrust;
    private final Instance<KubernetesClient> kubernetes;
    private ScheduledExecutorService scheduler;
    private RootSource source;
    private String lastReported;

    public RootLoader(CaConfig config, RootOfTrust rootOfTrust, Instance<KubernetesClient> kubernetes) {
        this.config = config;
        this.rootOfTrust = rootOfTrust;
        this.kubernetes = kubernetes;
    }

    void onStart(@Observes StartupEvent event) {
        source = switch (config.mode()) {
            case KUBERNETES -> new SecretRootSource(kubernetes.get(), config);
            case STANDALONE -> new DirectoryRootSource(config);
        };
        scheduler = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().name("ca-root-loader").factory());
        LOG.infof("loading the root of trust for trust domain %s from %s", config.trustDomain(), source.describe());
        if (config.mode() == CaConfig.Mode.STANDALONE) {
            attempt(); // a local directory: ready as soon as the service is up
        } else {
            scheduler.execute(this::attempt);
        }
    }

    void onStop(@Observes ShutdownEvent event) {
        if (scheduler != null) {
            scheduler.shutdownNow();
        }
    }

    private void attempt() {
        boolean loaded = rootOfTrust.current().isPresent();
        try {
            LoadedRoot root = source.load(!loaded);
            if (root != null) {
                rootOfTrust.install(root);
                lastReported = null;
            } else {
                report("the root has disappeared from " + source.describe() + "; keeping the one in use", true);
            }
        } catch (IllegalArgumentException | IllegalStateException e) {
            report("the root in " + source.describe() + " is unusable: " + e.getMessage(), loaded);
        } catch (RuntimeException e) {
            report("cannot read the root from " + source.describe() + ": " + describe(e), loaded);
        }
        Duration next = rootOfTrust.current().isPresent() ? config.rootReloadInterval() : config.rootRetryInterval();
        if (!scheduler.isShutdown()) {
            scheduler.schedule(this::attempt, next.toMillis(), TimeUnit.MILLISECONDS);
        }
    }

    private void report(String problem, boolean keepingCurrent) {
        if (!keepingCurrent) {
            rootOfTrust.failed(problem + "; retrying every " + config.rootRetryInterval().toSeconds() + "s");
        }
        if (!Objects.equals(problem, lastReported)) { // once per distinct problem, not every retry
            if (keepingCurrent) {
                LOG.warnf("%s; still signing with the root already loaded", problem);
            } else {
                LOG.errorf("%s; not ready until it can be loaded", problem);
            }
            lastReported = problem;
        }
    }

    static String describe(Throwable e) {
        StringBuilder text = new StringBuilder(String.valueOf(e.getMessage()));
        for (Throwable cause = e.getCause(); cause != null && cause != cause.getCause(); cause = cause.getCause()) {
            if (cause.getMessage() != null && !text.toString().contains(cause.getMessage())) {
                text.append(": ").append(cause.getMessage());
            }
        }
        return text.toString();
    }
}
