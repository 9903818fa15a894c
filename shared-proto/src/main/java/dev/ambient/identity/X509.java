package dev.ambient.identity;

import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/** Small certificate and key helpers shared by this package. */
final class X509 {

    private static final int SAN_URI = 6; // GeneralName tag for uniformResourceIdentifier
    private static final SecureRandom RANDOM = new SecureRandom();

    private X509() {}

    static List<String> uriSans(X509Certificate cert) {
        return sans(cert, SAN_URI);
    }

    /** The subjectAltNames of one type (GeneralName tag: 2 DNS, 6 URI), in order. */
    static List<String> sans(X509Certificate cert, int tag) {
        Collection<List<?>> sans;
        try {
            sans = cert.getSubjectAlternativeNames();
        } catch (CertificateParsingException e) {
            throw new IllegalArgumentException("unparsable subjectAltName: " + e.getMessage(), e);
        }
        List<String> names = new ArrayList<>();
        if (sans != null) {
            for (List<?> san : sans) {
                if (san.get(0) instanceof Integer t && t == tag) {
                    names.add((String) san.get(1));
                }
            }
        }
        return names;
    }

    /** JCA signature algorithm for a key: ECDSA for EC keys (what we issue), RSA for plug-in CAs. */
    static String signatureAlgorithm(PrivateKey key) {
        return switch (key.getAlgorithm()) {
            case "EC" -> "SHA256withECDSA";
            case "RSA" -> "SHA256withRSA";
            default -> throw new IllegalArgumentException("unsupported key algorithm " + key.getAlgorithm());
        };
    }

    /** True when the private key belongs to the public key (checked by signing a random challenge). */
    static boolean keysMatch(PrivateKey privateKey, PublicKey publicKey) {
        try {
            byte[] challenge = new byte[32];
            RANDOM.nextBytes(challenge);
            String algorithm = signatureAlgorithm(privateKey);
            Signature signer = Signature.getInstance(algorithm);
            signer.initSign(privateKey);
            signer.update(challenge);
            byte[] signature = signer.sign();
            Signature verifier = Signature.getInstance(algorithm);
            verifier.initVerify(publicKey);
            verifier.update(challenge);
            return verifier.verify(signature);
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            return false;
        }
    }

    static boolean verifiedBy(X509Certificate cert, PublicKey issuerKey) {
        try {
            cert.verify(issuerKey);
            return true;
        } catch (GeneralSecurityException e) {
            return false;
        }
    }

    static boolean isSelfSigned(X509Certificate cert) {
        return cert.getSubjectX500Principal().equals(cert.getIssuerX500Principal())
                && verifiedBy(cert, cert.getPublicKey());
    }

    /** A CA refuses keys too weak to protect an identity: EC below 256 bits, RSA below 2048. */
    static void checkAcceptableKey(PublicKey key) {
        if (key instanceof ECPublicKey ec) {
            if (ec.getParams().getCurve().getField().getFieldSize() < 256) {
                throw new IllegalArgumentException("EC key on a curve smaller than 256 bits");
            }
        } else if (key instanceof RSAPublicKey rsa) {
            if (rsa.getModulus().bitLength() < 2048) {
                throw new IllegalArgumentException("RSA key shorter than 2048 bits");
            }
        } else {
            throw new IllegalArgumentException("unsupported key algorithm " + key.getAlgorithm());
        }
    }
}
