package dev.ambient.ca.bundle;

import dev.ambient.ca.config.CaConfig;
import dev.ambient.ca.root.LoadedRoot;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import io.quarkus.runtime.ShutdownEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Instance;
import java.net.HttpURLConnection;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import org.jboss.logging.Logger;

/**
 * Publishes the trusted roots as ConfigMap {@code istio-ca-root-cert} (key {@code root-cert.pem},
 * Istio's name) in the system namespace and in every namespace labelled
 * {@code istio.io/dataplane-mode=ambient}, as namespaces appear or get the label, and again in all
 * of them when the roots change (rotation). An informer's periodic resync repairs ConfigMaps that
 * were edited or deleted. Kubernetes mode only; starts once the root is loaded.
 */
@ApplicationScoped
public class TrustBundlePublisher {

    private static final Logger LOG = Logger.getLogger(TrustBundlePublisher.class);
    public static final String DATAPLANE_MODE_LABEL = "istio.io/dataplane-mode";
    public static final String AMBIENT = "ambient";
    public static final String ROOT_CERT_KEY = "root-cert.pem";

    private final CaConfig config;
    private final Instance<KubernetesClient> kubernetes;
    private final ExecutorService worker =
            Executors.newSingleThreadExecutor(Thread.ofPlatform().daemon().name("ca-bundle-publisher").factory());
    private volatile String bundlePem;
    private SharedIndexInformer<Namespace> ambientNamespaces;

    public TrustBundlePublisher(CaConfig config, Instance<KubernetesClient> kubernetes) {
        this.config = config;
        this.kubernetes = kubernetes;
    }

    /** A new root (or the first): publish it everywhere; the first time, start watching namespaces. */
    synchronized void onRootChanged(@Observes LoadedRoot root) {
        if (config.mode() != CaConfig.Mode.KUBERNETES) {
            return;
        }
        bundlePem = root.trustBundlePem();
        if (ambientNamespaces == null) {
            startWatching();
        }
        submit(config.systemNamespace());
        for (Namespace namespace : ambientNamespaces.getStore().list()) {
            submit(namespace.getMetadata().getName());
        }
    }

    void onStop(@Observes ShutdownEvent event) {
        synchronized (this) {
            if (ambientNamespaces != null) {
                ambientNamespaces.close();
            }
        }
        worker.shutdownNow();
    }

    private void startWatching() {
        ambientNamespaces = kubernetes.get().namespaces()
                .withLabel(DATAPLANE_MODE_LABEL, AMBIENT)
                .runnableInformer(config.bundle().resyncInterval().toMillis());
        ambientNamespaces.addEventHandler(new ResourceEventHandler<>() {
            @Override
            public void onAdd(Namespace namespace) {
                submit(namespace.getMetadata().getName());
            }

            @Override
            public void onUpdate(Namespace before, Namespace after) {
                submit(after.getMetadata().getName()); // also every resync: repairs edited ConfigMaps
            }

            @Override
            public void onDelete(Namespace namespace, boolean finalStateUnknown) {
                // the ConfigMap goes with the namespace
            }
        });
        ambientNamespaces.start().whenComplete((done, failure) -> {
            if (failure != null) {
                LOG.warnf("watching namespaces labelled %s=%s failed to start: %s", DATAPLANE_MODE_LABEL, AMBIENT,
                        failure.getMessage());
            } else {
                LOG.infof("publishing the trust bundle to namespaces labelled %s=%s and %s",
                        DATAPLANE_MODE_LABEL, AMBIENT, config.systemNamespace());
            }
        });
    }

    private void submit(String namespace) {
        try {
            worker.execute(() -> publish(namespace));
        } catch (RejectedExecutionException e) {
            // shutting down
        }
    }

    /** Creates or updates the bundle ConfigMap in {@code namespace} when it differs from the current roots. */
    void publish(String namespace) {
        String pem = bundlePem;
        KubernetesClient client = kubernetes.get();
        String name = config.bundle().configMapName();
        for (int attempt = 1; attempt <= 3; attempt++) {
            try {
                ConfigMap existing = client.configMaps().inNamespace(namespace).withName(name).get();
                if (existing == null) {
                    client.configMaps().inNamespace(namespace).resource(new ConfigMapBuilder()
                            .withNewMetadata()
                                .withNamespace(namespace)
                                .withName(name)
                                .addToLabels("istio.io/config", "true")
                                .addToLabels("app.kubernetes.io/managed-by", "ambient-ca")
                            .endMetadata()
                            .withData(Map.of(ROOT_CERT_KEY, pem))
                            .build()).create();
                    LOG.infof("published the trust bundle to ConfigMap %s/%s", namespace, name);
                } else if (!Objects.equals(pem, existing.getData() == null ? null : existing.getData().get(ROOT_CERT_KEY))) {
                    client.configMaps().inNamespace(namespace)
                            .resource(new ConfigMapBuilder(existing).addToData(ROOT_CERT_KEY, pem).build())
                            .update();
                    LOG.infof("updated the trust bundle in ConfigMap %s/%s", namespace, name);
                }
                return;
            } catch (KubernetesClientException e) {
                if (e.getCode() == HttpURLConnection.HTTP_CONFLICT && attempt < 3) {
                    continue; // someone (the other replica) wrote it in between: look again
                }
                LOG.warnf("cannot publish the trust bundle to ConfigMap %s/%s: %s; retrying at the next resync",
                        namespace, name, e.getCode() > 0 ? "HTTP " + e.getCode() : e.getMessage());
                return;
            }
        }
    }
}
