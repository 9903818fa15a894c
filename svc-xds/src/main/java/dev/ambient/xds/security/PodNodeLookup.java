package dev.ambient.xds.security;

import dev.ambient.auth.AuthenticationFailure;
import dev.ambient.auth.Caller;
import dev.ambient.auth.TokenAuthenticator;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.util.function.Predicate;

/**
 * A ztunnel's node, when its bound token names its pod but not the node (clusters before the
 * TokenReview carried the node): the pod's {@code spec.nodeName}, read fresh from the API server.
 */
final class PodNodeLookup implements TokenAuthenticator {

    private final TokenAuthenticator delegate;
    private final KubernetesClient client;
    private final Predicate<Caller> needsNode;

    PodNodeLookup(TokenAuthenticator delegate, KubernetesClient client, Predicate<Caller> needsNode) {
        this.delegate = delegate;
        this.client = client;
        this.needsNode = needsNode;
    }

    @Override
    public Caller authenticate(String token, String peer) {
        Caller caller = delegate.authenticate(token, peer);
        if (caller.nodeName() != null || caller.podName() == null || !needsNode.test(caller)) {
            return caller;
        }
        Pod pod;
        try {
            pod = client.pods().inNamespace(caller.namespace()).withName(caller.podName()).get();
        } catch (KubernetesClientException e) {
            throw new AuthenticationFailure(AuthenticationFailure.Kind.UNAVAILABLE, "cannot look up the pod of " + caller
                    + ": the Kubernetes API did not answer; try again later", e);
        }
        String node = pod == null || pod.getSpec() == null ? null : pod.getSpec().getNodeName();
        return node == null || node.isEmpty() ? caller
                : new Caller(caller.namespace(), caller.serviceAccount(), caller.podName(), node);
    }
}
