package dev.ambient.ztunnel.identity;

import dev.ambient.controlplane.ControlPlaneEndpoint;
import dev.ambient.identity.CertificateClient;
import dev.ambient.identity.SpiffeId;
import dev.ambient.identity.WorkloadCertificate;
import dev.ambient.ztunnel.state.WorkloadStore;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.function.Function;

/**
 * Certificates from svc-ca through the shared {@link CertificateClient} (TLS to the CA verified by
 * the mounted mesh root), asking on behalf of a pod on this node (impersonation) with this
 * ztunnel's service-account token. The roots of the last issuance (the CA's trust bundle, over
 * that verified channel) are what peers must chain to, so a rotated root reaches the data plane
 * with the next renewal.
 */
public final class RemoteCertificateSource implements CertificateSource, AutoCloseable {

    private final CertificateClient client;
    private final WorkloadStore store;
    private final String nodeName;
    private final String trustDomain;
    private volatile List<X509Certificate> roots = List.of();
    /** Pods this node serves that the control plane may not list yet (in-pod Adds): namespace, name. */
    private volatile Function<SpiffeId, Optional<PodName>> servedPods = id -> Optional.empty();

    /** A pod by namespace and name, as the CA looks it up. */
    public record PodName(String namespace, String name) {
    }

    public RemoteCertificateSource(ControlPlaneEndpoint ca, Duration lifetime, WorkloadStore store,
            String nodeName, String trustDomain) {
        this.client = new CertificateClient(ca, lifetime, "ztunnel-ca-client");
        this.store = store;
        this.nodeName = nodeName;
        this.trustDomain = trustDomain;
    }

    @Override
    public CompletionStage<WorkloadCertificate> issue(SpiffeId identity) {
        Map<String, String> metadata = new HashMap<>();
        // Without a pod of that identity on this node, the CA would refuse: ask as ourselves.
        localPod(identity).or(() -> servedPods.apply(identity)).ifPresent(pod -> {
            metadata.put("impersonated-identity", identity.uri());
            metadata.put("pod-name", pod.name());
            metadata.put("pod-namespace", pod.namespace());
        });
        return client.issue(identity, metadata).thenApply(issued -> {
            if (!issued.roots().isEmpty()) {
                roots = issued.roots();
            }
            return issued.certificate();
        });
    }

    /**
     * Also names pods found elsewhere than in the control plane's workloads: an in-pod Add comes
     * before the pod runs, and the control plane publishes a pod only once it runs with an IP.
     */
    public void alsoServing(Function<SpiffeId, Optional<PodName>> pods) {
        this.servedPods = pods;
    }

    /** A pod on this node running as the identity: the CA checks it is scheduled here. */
    private Optional<PodName> localPod(SpiffeId id) {
        return store.current().workloadsOnNode(nodeName).stream()
                .filter(w -> WorkloadIdentity.of(w, trustDomain).equals(id))
                .map(w -> new PodName(w.getNamespace(), w.getName()))
                .findFirst();
    }

    @Override
    public List<X509Certificate> trustRoots() {
        return roots;
    }

    @Override
    public String describe() {
        return "ca at " + client.target();
    }

    @Override
    public void close() {
        client.close();
    }
}
