package dev.ambient.identity;

import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Objects;

/**
 * A workload's private key with its certificate chain: leaf first, then intermediates, root last.
 *
 * <p>The constructor checks that the leaf names {@code identity} and belongs to the key, so a
 * mix-up fails here rather than as an obscure TLS handshake error later.
 */
public record WorkloadCertificate(SpiffeId identity, PrivateKey privateKey, List<X509Certificate> chain) {

    public WorkloadCertificate {
        Objects.requireNonNull(identity, "identity");
        Objects.requireNonNull(privateKey, "privateKey");
        chain = List.copyOf(chain);
        if (chain.isEmpty()) {
            throw new IllegalArgumentException("certificate chain is empty");
        }
        SpiffeId named = SpiffeId.fromCertificate(chain.getFirst());
        if (!named.equals(identity)) {
            throw new IllegalArgumentException("leaf certificate is for " + named + ", not " + identity);
        }
        if (!X509.keysMatch(privateKey, chain.getFirst().getPublicKey())) {
            throw new IllegalArgumentException("private key does not belong to the leaf certificate of " + identity);
        }
    }

    public X509Certificate leaf() {
        return chain.getFirst();
    }

    public X509Certificate root() {
        return chain.getLast();
    }

    public Instant notBefore() {
        return leaf().getNotBefore().toInstant();
    }

    public Instant notAfter() {
        return leaf().getNotAfter().toInstant();
    }

    /** Half-way through the validity period: time to fetch the next certificate. */
    public Instant renewAt() {
        return notBefore().plus(Duration.between(notBefore(), notAfter()).dividedBy(2));
    }

    /** True while {@code now} lies within [notBefore, notAfter]. */
    public boolean validAt(Instant now) {
        return !now.isBefore(notBefore()) && !now.isAfter(notAfter());
    }
}
