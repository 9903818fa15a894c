package dev.ambient.identity;

import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.List;
import java.util.Objects;

/**
 * A control-plane server's key with its certificate chain (leaf first, root last): the certificate
 * names the server's DNS names (svc-ca's and svc-xds's Service names), never a SPIFFE id.
 */
public record ServingCertificate(PrivateKey privateKey, List<X509Certificate> chain) {

    private static final int SAN_DNS = 2;

    public ServingCertificate {
        Objects.requireNonNull(privateKey, "privateKey");
        chain = List.copyOf(chain);
        if (chain.isEmpty()) {
            throw new IllegalArgumentException("certificate chain is empty");
        }
        if (!X509.keysMatch(privateKey, chain.getFirst().getPublicKey())) {
            throw new IllegalArgumentException("private key does not belong to the serving certificate");
        }
        if (dnsNames(chain.getFirst()).isEmpty()) {
            throw new IllegalArgumentException("the serving certificate names no DNS name");
        }
    }

    public X509Certificate leaf() {
        return chain.getFirst();
    }

    public List<String> dnsNames() {
        return dnsNames(leaf());
    }

    public Instant notAfter() {
        return leaf().getNotAfter().toInstant();
    }

    /** The serial number in hex, as logs and tests name a certificate. */
    public String serial() {
        return leaf().getSerialNumber().toString(16);
    }

    /** The DNS SANs of a certificate (empty when it has none). */
    public static List<String> dnsNames(X509Certificate cert) {
        return X509.sans(cert, SAN_DNS);
    }

    @Override
    public String toString() {
        return "ServingCertificate[" + String.join(",", dnsNames()) + ", serial " + serial() + ", until " + notAfter() + "]";
    }
}
