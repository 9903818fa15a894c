package dev.ambient.ca.root;

import dev.ambient.identity.CertificateAuthority;
import dev.ambient.identity.Pem;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Istio's CA file names ({@code cacerts} Secret and {@code istio-ca-secret}), and turning their
 * contents into a {@link CertificateAuthority}.
 */
public final class CaFiles {

    /** The signing certificate: the root itself, or a plug-in intermediate. */
    public static final String CA_CERT = "ca-cert.pem";
    public static final String CA_KEY = "ca-key.pem";
    /** Plug-in CA: the chain from the signing certificate up (it may include the signer and the root). */
    public static final String CERT_CHAIN = "cert-chain.pem";
    public static final String ROOT_CERT = "root-cert.pem";
    /** Further roots to trust while a root is being rotated (any number of PEM certificates). */
    public static final String EXTRA_TRUSTED_ROOTS = "extra-trusted-roots.pem";

    private CaFiles() {}

    /**
     * A CA from the files of a Secret: {@value #CA_CERT} and {@value #CA_KEY} are required;
     * {@value #CERT_CHAIN} and {@value #ROOT_CERT} complete the chain of a plug-in intermediate.
     *
     * @throws IllegalArgumentException saying which file is missing or what does not fit
     */
    public static CertificateAuthority authority(Map<String, String> files, String trustDomain) {
        String signerPem = required(files, CA_CERT);
        String keyPem = required(files, CA_KEY);
        List<X509Certificate> signer = certificates(CA_CERT, signerPem);
        if (signer.size() != 1) {
            throw new IllegalArgumentException(CA_CERT + " holds " + signer.size() + " certificates, expected one");
        }
        List<X509Certificate> chain = new ArrayList<>(signer);
        optional(files, CERT_CHAIN).ifPresent(pem -> {
            for (X509Certificate cert : certificates(CERT_CHAIN, pem)) {
                if (!chain.contains(cert)) {
                    chain.add(cert);
                }
            }
        });
        optional(files, ROOT_CERT).ifPresent(pem -> {
            List<X509Certificate> roots = certificates(ROOT_CERT, pem);
            if (roots.size() != 1) {
                throw new IllegalArgumentException(ROOT_CERT + " holds " + roots.size() + " certificates, expected one");
            }
            if (!chain.getLast().equals(roots.getFirst())) {
                if (chain.contains(roots.getFirst())) {
                    throw new IllegalArgumentException(CERT_CHAIN + " continues past " + ROOT_CERT);
                }
                chain.add(roots.getFirst());
            }
        });
        PrivateKey key;
        try {
            key = Pem.decodePrivateKey(keyPem);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(CA_KEY + ": " + e.getMessage(), e);
        }
        return CertificateAuthority.of(key, chain, trustDomain);
    }

    /** The extra trusted roots of a Secret ({@value #EXTRA_TRUSTED_ROOTS}); empty when absent. */
    public static List<X509Certificate> extraRoots(Map<String, String> files) {
        return optional(files, EXTRA_TRUSTED_ROOTS).map(pem -> certificates(EXTRA_TRUSTED_ROOTS, pem)).orElse(List.of());
    }

    /** The certificates of a PEM file; empty when {@code file} is empty. */
    public static List<X509Certificate> extraRoots(Optional<Path> file) {
        if (file.isEmpty()) {
            return List.of();
        }
        try {
            String pem = Files.readString(file.get(), StandardCharsets.US_ASCII);
            return pem.isBlank() ? List.of() : certificates(file.get().toString(), pem);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read extra trusted roots " + file.get(), e);
        }
    }

    private static List<X509Certificate> certificates(String what, String pem) {
        try {
            List<X509Certificate> certs = Pem.decodeCertificates(pem);
            if (certs.isEmpty()) {
                throw new IllegalArgumentException("no CERTIFICATE in it");
            }
            return certs;
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(what + ": " + e.getMessage(), e);
        }
    }

    private static String required(Map<String, String> files, String name) {
        return optional(files, name).orElseThrow(() -> new IllegalArgumentException(name + " is missing or empty"));
    }

    /** Istio leaves unused keys as empty strings, so empty counts as absent. */
    private static Optional<String> optional(Map<String, String> files, String name) {
        String value = files.get(name);
        return value == null || value.isBlank() ? Optional.empty() : Optional.of(value);
    }
}
