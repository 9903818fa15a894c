package dev.ambient.cni.pods;

import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import java.util.List;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * Pods of this node and all namespaces from the Kubernetes API, through fabric8 informers (a list,
 * then a watch, re-listed on expiry), as svc-xds watches them. The pod informer selects
 * {@code spec.nodeName=<node>} so a node agent holds only its own pods. Never blocks startup: while
 * the API cannot be reached the informers retry and {@link #synced()} stays false.
 */
public final class KubernetesPodSource implements PodSource {

    private static final Logger LOG = Logger.getLogger(KubernetesPodSource.class);

    private final KubernetesClient client;
    private final String node;
    private final boolean nodeFieldSelector;
    private SharedIndexInformer<Pod> pods;
    private SharedIndexInformer<Namespace> namespaces;

    public KubernetesPodSource(KubernetesClient client, String node) {
        this(client, node, true);
    }

    /**
     * @param nodeFieldSelector false only against servers that cannot evaluate the
     *     {@code spec.nodeName} field selector (the fabric8 mock server answers it with nothing);
     *     {@link #podsOn} filters by node either way
     */
    public KubernetesPodSource(KubernetesClient client, String node, boolean nodeFieldSelector) {
        this.client = client;
        this.node = node;
        this.nodeFieldSelector = nodeFieldSelector;
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
        Namespace n = namespaces == null ? null : namespaces.getStore().getByKey(name);
        if (n == null && namespaces != null && !namespaces.hasSynced()) {
            n = get(() -> client.namespaces().withName(name).get());
        }
        return Optional.ofNullable(n);
    }

    @Override
    public Optional<Pod> pod(String namespace, String name) {
        Pod p = pods == null ? null : pods.getStore().getByKey(namespace + "/" + name);
        if (p == null) {
            // A CNI ADD can come before the watch event of its pod: ask the API directly.
            p = get(() -> client.pods().inNamespace(namespace).withName(name).get());
        }
        return Optional.ofNullable(p);
    }

    private static <T> T get(java.util.function.Supplier<T> call) {
        try {
            return call.get();
        } catch (KubernetesClientException e) {
            LOG.warnf("Kubernetes API: %s", e.getMessage());
            return null;
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
