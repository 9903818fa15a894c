package dev.ambient.auth;

import dev.ambient.identity.SpiffeId;

/**
 * Who sent a request to the control plane, as its service-account token says.
 *
 * @param namespace the service account's namespace
 * @param serviceAccount the service account's name
 * @param podName the pod a bound token belongs to, or null
 * @param nodeName the node that pod runs on, when the token says so, or null
 */
public record Caller(String namespace, String serviceAccount, String podName, String nodeName) {

    /** The identity a workload with this service account has. */
    public SpiffeId identity(String trustDomain) {
        return new SpiffeId(trustDomain, namespace, serviceAccount);
    }

    /** {@code namespace/serviceaccount}, the form of {@code ca.ztunnel-service-account}. */
    public String serviceAccountRef() {
        return namespace + "/" + serviceAccount;
    }

    @Override
    public String toString() {
        StringBuilder text = new StringBuilder("service account ").append(serviceAccountRef());
        if (podName != null) {
            text.append(" (pod ").append(podName);
            if (nodeName != null) {
                text.append(" on ").append(nodeName);
            }
            text.append(')');
        } else if (nodeName != null) {
            text.append(" (node ").append(nodeName).append(')');
        }
        return text.toString();
    }
}
