package dev.ambient.ztunnel.identity;

import dev.ambient.identity.SpiffeId;
import dev.ambient.identity.WorkloadCertificate;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.concurrent.CompletionStage;

/** Where workload certificates come from: a local root (standalone) or the mesh's CA. */
public interface CertificateSource {

    /** Issues a fresh certificate (new key) for an identity this ztunnel serves. */
    CompletionStage<WorkloadCertificate> issue(SpiffeId identity);

    /** The roots peers' certificates must chain to; more than one while a root rotates. */
    List<X509Certificate> trustRoots();

    /** For logs and the config dump. */
    String describe();
}
