package dev.ambient.ca.auth;

import dev.ambient.auth.Caller;
import dev.ambient.ca.Refusal;
import dev.ambient.ca.Refusal.Reason;
import dev.ambient.identity.SpiffeId;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Decides whether a caller may have an identity. A workload gets only its own
 * ({@code spiffe://<td>/ns/<its namespace>/sa/<its service account>}). A ztunnel may also get the
 * identity of a pod it names, if that pod is scheduled on the ztunnel's own node and runs as
 * that identity's service account (impersonation, as in Istio ambient).
 */
public final class IdentityAuthorizer {

    /** Request metadata: the SPIFFE id a ztunnel asks for on a pod's behalf. */
    public static final String IMPERSONATED_IDENTITY = "impersonated-identity";
    public static final String POD_NAME = "pod-name";
    public static final String POD_NAMESPACE = "pod-namespace";

    private final String trustDomain;
    private final Set<String> ztunnelServiceAccounts;
    private final PodDirectory pods;

    public IdentityAuthorizer(String trustDomain, Set<String> ztunnelServiceAccounts, PodDirectory pods) {
        this.trustDomain = trustDomain;
        this.ztunnelServiceAccounts = Set.copyOf(ztunnelServiceAccounts);
        this.pods = pods;
    }

    /**
     * Returns normally when {@code caller} may have {@code requested}.
     *
     * @throws Refusal {@code PERMISSION_DENIED} saying why not, {@code INVALID_REQUEST} for
     *     inconsistent metadata, {@code KUBERNETES_UNAVAILABLE} when a pod cannot be looked up
     */
    public void authorize(Caller caller, SpiffeId requested, Map<String, String> metadata) {
        if (!requested.trustDomain().equals(trustDomain)) {
            throw new Refusal(Reason.PERMISSION_DENIED, "identity " + requested + " is in trust domain "
                    + requested.trustDomain() + "; this CA signs only for " + trustDomain);
        }
        String impersonated = metadata.get(IMPERSONATED_IDENTITY);
        SpiffeId own = caller.identity(trustDomain);
        if (impersonated != null && !impersonated.isEmpty() && !impersonated.equals(requested.uri())) {
            throw new Refusal(Reason.INVALID_REQUEST, "the CSR asks for " + requested + " but metadata "
                    + IMPERSONATED_IDENTITY + " names " + impersonated);
        }
        if (impersonated == null || impersonated.isEmpty() || own.equals(requested)) {
            // its own identity needs no pod: "impersonating" oneself is just asking for it
            if (!own.equals(requested)) {
                throw new Refusal(Reason.PERMISSION_DENIED, caller + " may get only its own identity " + own
                        + ", not " + requested);
            }
            return;
        }
        authorizeImpersonation(caller, requested, metadata);
    }

    private void authorizeImpersonation(Caller caller, SpiffeId requested, Map<String, String> metadata) {
        if (!ztunnelServiceAccounts.contains(caller.serviceAccountRef())) {
            throw new Refusal(Reason.PERMISSION_DENIED, caller + " may not ask for other identities: only a ztunnel ("
                    + String.join(", ", ztunnelServiceAccounts) + ") may");
        }
        String podName = metadata.get(POD_NAME);
        String podNamespace = metadata.get(POD_NAMESPACE);
        if (podName == null || podName.isEmpty() || podNamespace == null || podNamespace.isEmpty()) {
            throw new Refusal(Reason.INVALID_REQUEST, "impersonation needs metadata " + POD_NAME + " and "
                    + POD_NAMESPACE + " naming the pod that has identity " + requested);
        }
        if (!podNamespace.equals(requested.namespace())) {
            throw new Refusal(Reason.PERMISSION_DENIED, "pod " + podNamespace + "/" + podName
                    + " cannot have " + requested + ": it is in namespace " + podNamespace + ", not " + requested.namespace());
        }
        PodPlacement pod = pods.find(podNamespace, podName).orElseThrow(() -> new Refusal(Reason.PERMISSION_DENIED,
                "pod " + podNamespace + "/" + podName + " does not exist"));
        if (!pod.serviceAccount().equals(requested.serviceAccount())) {
            throw new Refusal(Reason.PERMISSION_DENIED, "pod " + pod + " runs as service account "
                    + pod.serviceAccount() + ", so it cannot have " + requested);
        }
        String ztunnelNode = nodeOf(caller);
        if (pod.nodeName() == null) {
            throw new Refusal(Reason.PERMISSION_DENIED, "pod " + pod + " is not scheduled on a node yet");
        }
        if (!pod.nodeName().equals(ztunnelNode)) {
            throw new Refusal(Reason.PERMISSION_DENIED, "pod " + pod + " is scheduled on " + pod.nodeName()
                    + ", not " + ztunnelNode + " where " + caller + " runs");
        }
    }

    /** The ztunnel's node: named by its bound token, else the node of the pod its token is bound to. */
    private String nodeOf(Caller caller) {
        if (caller.nodeName() != null) {
            return caller.nodeName();
        }
        if (caller.podName() == null) {
            throw new Refusal(Reason.PERMISSION_DENIED, "cannot tell which node " + caller + " runs on: its token is "
                    + "not bound to a pod (use a projected service-account token)");
        }
        Optional<PodPlacement> own = pods.find(caller.namespace(), caller.podName());
        return own.map(PodPlacement::nodeName).orElseThrow(() -> new Refusal(Reason.PERMISSION_DENIED,
                "cannot tell which node " + caller + " runs on: its pod " + caller.namespace() + "/" + caller.podName()
                        + (own.isEmpty() ? " does not exist" : " is not scheduled")));
    }
}
