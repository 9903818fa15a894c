package dev.ambient.xds.source;

import dev.ambient.xds.translate.KubeKind;
import dev.ambient.xds.translate.MeshConfig;
import dev.ambient.xds.translate.MeshInput;
import dev.ambient.xds.translate.MeshTranslator;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import java.time.Duration;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/**
 * The mesh read from the Kubernetes API with fabric8 informers: Namespaces, Pods, Services and
 * EndpointSlices as typed objects; AuthorizationPolicy, PeerAuthentication, Gateway and HTTPRoute
 * as generic resources. Any event asks for a (debounced) recomputation on the model thread.
 *
 * <p>Never blocks startup: while the API server cannot be reached the informers retry with
 * backoff and {@link #synced()} stays false. When a CRD is not installed (the list answers 404)
 * that kind counts as empty and synced, it is logged once, and the informer is tried again every
 * {@code retryInterval} (so installing Istio's or the Gateway API's CRDs later is picked up).
 * {@link #synced()} is true once every kind has been listed (or found absent) and a snapshot
 * computed from them.
 */
public final class KubernetesMeshSource extends AbstractMeshSource {

    private final KubernetesClient client;
    private final Duration retryInterval;
    private final String rootNamespace;
    private final Map<KubeKind, Watched> watched = new EnumMap<>(KubeKind.class);

    /** One kind's informer and what is known of it. */
    private static final class Watched {
        volatile SharedIndexInformer<? extends HasMetadata> informer;
        volatile boolean synced;
        volatile boolean absent;
        volatile boolean loggedTrouble;
    }

    public KubernetesMeshSource(KubernetesClient client, MeshTranslator translator, Duration debounce,
            Duration retryInterval) {
        super("xds-kubernetes-source", translator, debounce);
        this.client = Objects.requireNonNull(client, "client");
        this.retryInterval = retryInterval;
        this.rootNamespace = translator.config().rootNamespace();
        for (KubeKind k : KubeKind.values()) {
            watched.put(k, new Watched());
        }
    }

    public KubernetesMeshSource(KubernetesClient client, MeshTranslator translator) {
        this(client, translator, Duration.ofMillis(100), Duration.ofSeconds(60));
    }

    @Override
    public void start() {
        log.infof("watching the mesh through the Kubernetes API at %s", client.getMasterUrl());
        for (KubeKind k : KubeKind.values()) {
            executor.execute(() -> startInformer(k));
        }
    }

    static ResourceDefinitionContext context(KubeKind k) {
        return new ResourceDefinitionContext.Builder().withGroup(k.group()).withVersion(k.version())
                .withKind(k.kind()).withPlural(k.plural()).withNamespaced(k.namespaced()).build();
    }

    private SharedIndexInformer<? extends HasMetadata> informer(KubeKind k) {
        return switch (k) {
            case NAMESPACE -> client.namespaces().runnableInformer(0);
            case POD -> client.pods().inAnyNamespace().runnableInformer(0);
            case SERVICE -> client.services().inAnyNamespace().runnableInformer(0);
            case ENDPOINT_SLICE -> client.discovery().v1().endpointSlices().inAnyNamespace().runnableInformer(0);
            // Istio's mesh configuration only, in the root namespace (RBAC grants that one by name).
            case CONFIG_MAP -> client.configMaps().inNamespace(rootNamespace)
                    .withField("metadata.name", MeshConfig.CONFIG_MAP).runnableInformer(0);
            default -> client.genericKubernetesResources(context(k)).inAnyNamespace().runnableInformer(0);
        };
    }

    /** Model thread. */
    private void startInformer(KubeKind k) {
        if (isClosed()) {
            return;
        }
        Watched w = watched.get(k);
        SharedIndexInformer<? extends HasMetadata> inf;
        try {
            inf = informer(k);
            inf.addEventHandler(new ResourceEventHandler<HasMetadata>() {
                @Override
                public void onAdd(HasMetadata obj) {
                    requestRecompute();
                }

                @Override
                public void onUpdate(HasMetadata oldObj, HasMetadata newObj) {
                    requestRecompute();
                }

                @Override
                public void onDelete(HasMetadata obj, boolean deletedFinalStateUnknown) {
                    requestRecompute();
                }
            });
            inf.exceptionHandler((started, t) -> {
                if (k.generic() && notFound(t)) {
                    return false; // the CRD is not installed: stop, count as empty, try again later
                }
                if (!w.loggedTrouble) {
                    w.loggedTrouble = true;
                    log.warnf("cannot watch %s yet (%s); retrying with backoff", k.plural(), message(t));
                }
                return true;
            });
            w.informer = inf;
            inf.start().whenComplete((v, t) -> executor.execute(() -> started(k, inf, t)));
            inf.stopped().whenComplete((v, t) -> {
                if (t != null && !isClosed() && w.informer == inf && w.synced) {
                    executor.execute(() -> started(k, inf, t));
                }
            });
        } catch (RuntimeException e) {
            log.warnf("cannot start watching %s: %s; trying again in %s", k.plural(), message(e), retryInterval);
            retryLater(k);
        }
    }

    /** Model thread: the informer of {@code k} has listed everything ({@code t} null) or stopped with {@code t}. */
    private void started(KubeKind k, SharedIndexInformer<? extends HasMetadata> inf, Throwable t) {
        Watched w = watched.get(k);
        if (isClosed() || w.informer != inf) {
            return;
        }
        if (t == null) {
            if (w.absent || w.loggedTrouble) {
                log.infof("watching %s", k.plural());
            }
            w.absent = false;
            w.loggedTrouble = false;
            w.synced = true;
        } else {
            inf.stop();
            w.informer = null;
            if (k.generic() && notFound(t)) {
                if (!w.absent) {
                    log.infof("%s (%s/%s) is not installed; treating it as empty and checking again every %s",
                            k.kind(), k.group(), k.version(), retryInterval);
                }
                w.absent = true;
                w.synced = true;
            } else {
                log.warnf("watching %s stopped: %s; trying again in %s", k.plural(), message(t), retryInterval);
            }
            retryLater(k);
        }
        requestRecompute();
    }

    private void retryLater(KubeKind k) {
        if (!isClosed()) {
            try {
                executor.schedule(() -> startInformer(k), retryInterval.toMillis(), TimeUnit.MILLISECONDS);
            } catch (java.util.concurrent.RejectedExecutionException e) {
                // closing
            }
        }
    }

    private static boolean notFound(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof KubernetesClientException kce && kce.getCode() == 404) {
                return true;
            }
            if (c.getCause() == c) {
                break;
            }
        }
        return false;
    }

    private static String message(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getCause() != c && c.getMessage() == null) {
            c = c.getCause();
        }
        return c.getMessage() == null ? c.toString() : c.getMessage();
    }

    @Override
    protected boolean sourceSynced() {
        for (Watched w : watched.values()) {
            if (!w.synced) {
                return false;
            }
        }
        return true;
    }

    @Override
    protected MeshInput collect() {
        MeshInput.Builder b = MeshInput.builder();
        for (Watched w : watched.values()) {
            SharedIndexInformer<? extends HasMetadata> inf = w.informer;
            if (inf == null || w.absent) {
                continue;
            }
            List<? extends HasMetadata> items = inf.getStore().list();
            items.forEach(b::add);
        }
        return b.build();
    }

    @Override
    public void close() {
        super.close();
        for (Watched w : watched.values()) {
            SharedIndexInformer<? extends HasMetadata> inf = w.informer;
            if (inf != null) {
                try {
                    inf.stop();
                } catch (RuntimeException e) {
                    // closing anyway
                }
            }
        }
    }
}
