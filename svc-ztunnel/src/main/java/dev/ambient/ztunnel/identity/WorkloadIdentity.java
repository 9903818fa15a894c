package dev.ambient.ztunnel.identity;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.workload.Workload;

/** The SPIFFE identity a workload runs as: its namespace and service account in its trust domain. */
public final class WorkloadIdentity {

    private WorkloadIdentity() {
    }

    public static SpiffeId of(Workload w, String defaultTrustDomain) {
        String td = w.getTrustDomain().isEmpty() ? defaultTrustDomain : w.getTrustDomain();
        String sa = w.getServiceAccount().isEmpty() ? "default" : w.getServiceAccount();
        return new SpiffeId(td, w.getNamespace(), sa);
    }
}
