package dev.ambient.ca.auth;

import dev.ambient.auth.Caller;
import dev.ambient.ca.Refusal;
import dev.ambient.ca.Refusal.Reason;
import dev.ambient.identity.CertificateSubject;
import java.util.List;
import java.util.Set;

/**
 * Decides whether a caller may have a serving certificate for DNS names: only a configured
 * control-plane account ({@code ca.control-plane-service-accounts}, e.g. svc-xds's
 * {@code istio-system/xds}), and only for the names of the Service named after it in its own
 * namespace. Nobody else ever gets a DNS name from the mesh root, so no workload can pose as
 * svc-ca or svc-xds to the proxies.
 */
public final class ServerNameAuthorizer {

    private final Set<String> accounts;
    private final String clusterDomain;

    public ServerNameAuthorizer(Set<String> accounts, String clusterDomain) {
        this.accounts = Set.copyOf(accounts);
        this.clusterDomain = clusterDomain;
    }

    /** The names {@code caller}'s Service has: {@code <sa>.<ns>.svc} and {@code <sa>.<ns>.svc.<cluster-domain>}. */
    public List<String> namesOf(Caller caller) {
        String svc = caller.serviceAccount() + "." + caller.namespace() + ".svc";
        return List.of(svc, svc + "." + clusterDomain);
    }

    /** @throws Refusal {@code PERMISSION_DENIED} saying why not */
    public void authorize(Caller caller, CertificateSubject.ServerNames requested) {
        if (!accounts.contains(caller.serviceAccountRef())) {
            throw new Refusal(Reason.PERMISSION_DENIED, caller + " may not get a serving certificate for "
                    + String.join(", ", requested.dnsNames()) + ": only " + String.join(", ", accounts) + " may");
        }
        List<String> allowed = namesOf(caller);
        for (String name : requested.dnsNames()) {
            if (!allowed.contains(name)) {
                throw new Refusal(Reason.PERMISSION_DENIED, caller + " may get a serving certificate for "
                        + String.join(", ", allowed) + " only, not " + name);
            }
        }
    }
}
