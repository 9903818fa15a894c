package dev.ambient.ca.root;

import dev.ambient.identity.CertificateAuthority;
import dev.ambient.identity.Pem;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;

/**
 * The signing authority in use and every root the mesh trusts: the authority's own root first,
 * then the extra roots configured for a rotation.
 *
 * @param authority signs workload certificates
 * @param trustedRoots the authority's root, then further trusted roots, without duplicates
 * @param source where it came from, for logs ("Secret istio-system/istio-ca-secret")
 */
public record LoadedRoot(CertificateAuthority authority, List<X509Certificate> trustedRoots, String source) {

    public LoadedRoot {
        trustedRoots = List.copyOf(trustedRoots);
    }

    public static LoadedRoot of(CertificateAuthority authority, List<X509Certificate> extraRoots, String source) {
        List<X509Certificate> roots = new ArrayList<>();
        roots.add(authority.root());
        for (X509Certificate extra : extraRoots) {
            if (!roots.contains(extra)) {
                roots.add(extra);
            }
        }
        return new LoadedRoot(authority, roots, source);
    }

    /** The trusted roots as one PEM text: what goes into the bundle ConfigMap's root-cert.pem. */
    public String trustBundlePem() {
        return Pem.encodeCertificates(trustedRoots);
    }

    /** True when both sign with the same chain and trust the same roots. */
    public boolean sameAs(LoadedRoot other) {
        return other != null && authority.chainToRoot().equals(other.authority.chainToRoot())
                && trustedRoots.equals(other.trustedRoots);
    }

    public String describe() {
        return authority + " from " + source + ", " + trustedRoots.size() + " trusted root(s)";
    }
}
