package dev.ambient.cni.pods;

import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.jboss.logging.Logger;

/**
 * Pods of this node and all namespaces from the Kubernetes API, through fabric8 informers (a list,
 * then a watch, re-listed on expiry), as svc-xds watches them. The pod informer selects
 * {@code spec.nodeName=<node>} so a node agent holds only its own pods. Never blocks startup: while
 * the API cannot be reached the informers retry and {@link #synced()} stays false.
 */
public final class KubernetesPodSource implements PodSource {

    private static final Logger LOG = Logger.getLogger(KubernetesPodSource.class);
    /** API lookups in flight at most (each ends with the client's own request timeout). */
    static final int MAX_LOOKUPS = 8;
    public static final Duration DEFAULT_LOOKUP_TIMEOUT = Duration.ofSeconds(5);

    private final KubernetesClient client;
    private final String node;
    private final boolean nodeFieldSelector;
    private final Duration lookupTimeout;
    private final Semaphore lookups = new Semaphore(MAX_LOOKUPS);
    private SharedIndexInformer<Pod> pods;
    private SharedIndexInformer<Namespace> namespaces;

    public KubernetesPodSource(KubernetesClient client, String node, Duration lookupTimeout) {
        this(client, node, true, lookupTimeout);
    }

    public KubernetesPodSource(KubernetesClient client, String node, boolean nodeFieldSelector) {
        this(client, node, nodeFieldSelector, DEFAULT_LOOKUP_TIMEOUT);
    }

    /**
     * @param nodeFieldSelector false only against servers that cannot evaluate the
     *     {@code spec.nodeName} field selector (the fabric8 mock server answers it with nothing);
     *     {@link #podsOn} filters by node either way
     * @param lookupTimeout how long a CNI ADD waits for the API when the cache misses its pod
     */
    public KubernetesPodSource(KubernetesClient client, String node, boolean nodeFieldSelector,
            Duration lookupTimeout) {
        this.client = client;
        this.node = node;
        this.nodeFieldSelector = nodeFieldSelector;
        this.lookupTimeout = lookupTimeout;
    }

    @Override
    public void start(Runnable onChange) {
        LOG.infof("watching pods of node %s and namespaces at %s", node, client.getMasterUrl());
        ResourceEventHandler<Object> handler = new ResourceEventHandler<>() {
            @Override
            public void onAdd(Object obj) {
                onChange.run();
            }

            @Override
            public void onUpdate(Object oldObj, Object newObj) {
                onChange.run();
            }

            @Override
            public void onDelete(Object obj, boolean deletedFinalStateUnknown) {
                onChange.run();
            }
        };
        pods = nodeFieldSelector
                ? client.pods().inAnyNamespace().withField("spec.nodeName", node).runnableInformer(0)
                : client.pods().inAnyNamespace().runnableInformer(0);
        namespaces = client.namespaces().runnableInformer(0);
        pods.addEventHandler(cast(handler));
        namespaces.addEventHandler(cast(handler));
        pods.start().whenComplete((v, e) -> synced("pods", e, onChange));
        namespaces.start().whenComplete((v, e) -> synced("namespaces", e, onChange));
    }

    @SuppressWarnings("unchecked")
    private static <T> ResourceEventHandler<T> cast(ResourceEventHandler<Object> h) {
        return (ResourceEventHandler<T>) (ResourceEventHandler<?>) h;
    }

    private void synced(String what, Throwable e, Runnable onChange) {
        if (e != null) {
            LOG.warnf("listing %s failed (%s); the informer keeps retrying", what, e.getMessage());
        } else {
            LOG.infof("%s listed", what);
            onChange.run();
        }
    }

    @Override
    public boolean synced() {
        return pods != null && namespaces != null && pods.hasSynced() && namespaces.hasSynced();
    }

    @Override
    public List<Pod> podsOn(String node) {
        // The informer holds only this node's pods; the filter keeps that true whatever the server did.
        return pods == null ? List.of() : pods.getStore().list().stream()
                .filter(p -> p.getSpec() != null && node.equals(p.getSpec().getNodeName())).toList();
    }

    @Override
    public Optional<Namespace> namespace(String name) {
        return Optional.ofNullable(namespaces == null ? null : namespaces.getStore().getByKey(name));
    }

    @Override
    public Optional<Pod> pod(String namespace, String name) {
        return Optional.ofNullable(pods == null ? null : pods.getStore().getByKey(namespace + "/" + name));
    }

    /**
     * A CNI ADD can come before the watch event of its pod: then the API is asked, on a virtual
     * thread (never the enrol thread), at most {@link #MAX_LOOKUPS} at once, and the answer is
     * awaited for {@code lookupTimeout}; a slow API fails this ADD (the kubelet retries it) and
     * nothing else.
     */
    @Override
    public CompletableFuture<Lookup> lookup(String namespace, String name) {
        Optional<Pod> cachedPod = pod(namespace, name);
        Optional<Namespace> cachedNamespace = namespace(namespace);
        boolean namespaceKnown = cachedNamespace.isPresent() || (namespaces != null && namespaces.hasSynced());
        if (cachedPod.isPresent() && namespaceKnown) {
            return CompletableFuture.completedFuture(new Lookup(cachedPod, cachedNamespace));
        }
        String what = "pod " + namespace + "/" + name;
        if (!lookups.tryAcquire()) {
            LOG.warnf("Kubernetes API lookup of %s refused: %d lookups already in flight", what, MAX_LOOKUPS);
            return CompletableFuture.failedFuture(new PodLookupFailed("not in the agent's cache and " + MAX_LOOKUPS
                    + " Kubernetes API lookups already in flight; try again"));
        }
        CompletableFuture<Lookup> f = new CompletableFuture<>();
        Thread.ofVirtual().name("k8s-lookup").start(() -> {
            try {
                Pod p = cachedPod.orElseGet(() -> client.pods().inNamespace(namespace).withName(name).get());
                Namespace n = namespaceKnown ? cachedNamespace.orElse(null)
                        : client.namespaces().withName(namespace).get();
                f.complete(new Lookup(Optional.ofNullable(p), Optional.ofNullable(n)));
            } catch (KubernetesClientException e) {
                LOG.warnf("Kubernetes API lookup of %s failed: %s", what, e.getMessage());
                f.completeExceptionally(new PodLookupFailed("Kubernetes API lookup failed: " + e.getMessage()));
            } catch (RuntimeException e) {
                f.completeExceptionally(e);
            } finally {
                lookups.release();
            }
        });
        return f.orTimeout(lookupTimeout.toMillis(), TimeUnit.MILLISECONDS).exceptionallyCompose(e -> {
            if (e instanceof TimeoutException) {
                LOG.warnf("Kubernetes API lookup of %s: no answer within %s (cni.kubernetes-lookup-timeout);"
                        + " failing this CNI ADD", what, lookupTimeout);
                return CompletableFuture.failedFuture(new PodLookupFailed("not in the agent's cache and the"
                        + " Kubernetes API did not answer within " + lookupTimeout + "; try again"));
            }
            return CompletableFuture.failedFuture(e);
        });
    }

    /** Why a pod could not be looked up; its message is the CNI ADD's answer. */
    public static final class PodLookupFailed extends RuntimeException {
        PodLookupFailed(String message) {
            super(message, null, false, false);
        }
    }

    @Override
    public void close() {
        if (pods != null) {
            pods.close();
        }
        if (namespaces != null) {
            namespaces.close();
        }
    }
}
