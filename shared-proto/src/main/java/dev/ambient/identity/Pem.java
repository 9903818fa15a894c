package dev.ambient.identity;

import java.io.IOException;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.CertificateEncodingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.openssl.PEMEncryptedKeyPair;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.PKCS8EncryptedPrivateKeyInfo;

/**
 * PEM text for certificates, PKCS#8 private keys and PKCS#10 requests, as exchanged with the CA
 * and stored in files or Secrets. Decoding failures are {@link IllegalArgumentException}s.
 *
 * <p>Writing is done here (it is only base64 between two lines); reading uses BouncyCastle's
 * parser, which also accepts the legacy "EC PRIVATE KEY"/"RSA PRIVATE KEY" forms that openssl
 * and existing Istio plug-in CA files use.
 */
public final class Pem {

    private static final Base64.Encoder BASE64 =
            Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII));

    private Pem() {}

    public static String encodeCertificate(X509Certificate cert) {
        try {
            return block("CERTIFICATE", cert.getEncoded());
        } catch (CertificateEncodingException e) {
            throw new IllegalArgumentException("cannot encode certificate", e);
        }
    }

    /** Concatenated CERTIFICATE blocks, in list order. */
    public static String encodeCertificates(List<X509Certificate> certs) {
        StringBuilder pem = new StringBuilder();
        certs.forEach(cert -> pem.append(encodeCertificate(cert)));
        return pem.toString();
    }

    /** Every CERTIFICATE block in order; other blocks are skipped; none at all is an error. */
    public static List<X509Certificate> decodeCertificates(String pem) {
        JcaX509CertificateConverter converter = new JcaX509CertificateConverter();
        List<X509Certificate> certs = new ArrayList<>();
        for (Object o : parse(pem)) {
            if (o instanceof X509CertificateHolder holder) {
                try {
                    certs.add(converter.getCertificate(holder));
                } catch (CertificateException e) {
                    throw new IllegalArgumentException("invalid certificate in PEM: " + e.getMessage(), e);
                }
            }
        }
        if (certs.isEmpty()) {
            throw new IllegalArgumentException("no CERTIFICATE found in PEM");
        }
        return List.copyOf(certs);
    }

    /** A "PRIVATE KEY" (unencrypted PKCS#8) block. */
    public static String encodePrivateKey(PrivateKey key) {
        if (!"PKCS#8".equals(key.getFormat())) {
            throw new IllegalArgumentException("private key is not exportable as PKCS#8 (format "
                    + key.getFormat() + ")");
        }
        return block("PRIVATE KEY", key.getEncoded());
    }

    /** Exactly one unencrypted private key: PKCS#8, or the legacy SEC1/PKCS#1 forms. */
    public static PrivateKey decodePrivateKey(String pem) {
        JcaPEMKeyConverter converter = new JcaPEMKeyConverter();
        List<PrivateKey> keys = new ArrayList<>();
        for (Object o : parse(pem)) {
            try {
                switch (o) {
                    case PrivateKeyInfo info -> keys.add(converter.getPrivateKey(info));
                    case PEMKeyPair pair -> keys.add(converter.getPrivateKey(pair.getPrivateKeyInfo()));
                    case PKCS8EncryptedPrivateKeyInfo _, PEMEncryptedKeyPair _ ->
                            throw new IllegalArgumentException("encrypted private keys are not supported");
                    default -> { }
                }
            } catch (IOException e) {
                throw new IllegalArgumentException("invalid private key in PEM: " + e.getMessage(), e);
            }
        }
        if (keys.size() != 1) {
            throw new IllegalArgumentException("expected exactly one PRIVATE KEY in PEM, found " + keys.size());
        }
        return keys.getFirst();
    }

    public static String encodeCertificateRequest(PKCS10CertificationRequest csr) {
        try {
            return block("CERTIFICATE REQUEST", csr.getEncoded());
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot encode certificate request", e);
        }
    }

    /** Exactly one CERTIFICATE REQUEST block. */
    public static PKCS10CertificationRequest decodeCertificateRequest(String pem) {
        List<PKCS10CertificationRequest> csrs = new ArrayList<>();
        for (Object o : parse(pem)) {
            if (o instanceof PKCS10CertificationRequest csr) {
                csrs.add(csr);
            }
        }
        if (csrs.size() != 1) {
            throw new IllegalArgumentException(
                    "expected exactly one CERTIFICATE REQUEST in PEM, found " + csrs.size());
        }
        return csrs.getFirst();
    }

    private static String block(String type, byte[] der) {
        return "-----BEGIN " + type + "-----\n" + BASE64.encodeToString(der) + "\n-----END " + type + "-----\n";
    }

    private static List<Object> parse(String pem) {
        if (pem == null) {
            throw new IllegalArgumentException("PEM text is null");
        }
        List<Object> objects = new ArrayList<>();
        try (PEMParser parser = new PEMParser(new StringReader(pem))) {
            for (Object o = parser.readObject(); o != null; o = parser.readObject()) {
                objects.add(o);
            }
        } catch (IOException | RuntimeException e) {
            // BouncyCastle reports bad base64 or DER as unchecked exceptions as well as IOExceptions
            throw new IllegalArgumentException("invalid PEM: " + e.getMessage(), e);
        }
        return objects;
    }
}
