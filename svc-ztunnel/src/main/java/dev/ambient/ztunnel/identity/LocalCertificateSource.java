package dev.ambient.ztunnel.identity;

import dev.ambient.identity.CertificateAuthority;
import dev.ambient.identity.SpiffeId;
import dev.ambient.identity.WorkloadCertificate;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * Standalone identity: the ztunnel signs its workloads' certificates with a root kept in a
 * directory. Several ztunnels pointed at the same directory trust each other, which is how a
 * mesh runs on one machine without svc-ca.
 */
public final class LocalCertificateSource implements CertificateSource {

    private final CertificateAuthority authority;
    private final Duration lifetime;
    private final Path dir;

    public LocalCertificateSource(Path dir, String trustDomain, Duration lifetime) {
        this.dir = dir;
        this.authority = CertificateAuthority.loadOrCreate(dir, trustDomain, Duration.ofDays(3650));
        this.lifetime = lifetime;
    }

    @Override
    public CompletionStage<WorkloadCertificate> issue(SpiffeId identity) {
        try {
            return CompletableFuture.completedFuture(authority.issue(identity, lifetime));
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    @Override
    public List<X509Certificate> trustRoots() {
        return List.of(authority.root());
    }

    @Override
    public String describe() {
        return "local root in " + dir;
    }
}
