package dev.ambient.waypoint.authn;

import java.security.GeneralSecurityException;
import java.security.PublicKey;
import java.security.Signature;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.EdECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;

/**
 * The signature algorithms a waypoint accepts, with the JDK's name for each and the key it needs.
 * Deliberately absent: {@code none} and the HMAC family (a shared secret has no place in a public
 * key set, and accepting HS* with an RSA key as secret is the classic algorithm-confusion forgery).
 */
public enum JwtAlgorithm {
    RS256("SHA256withRSA", null, 0),
    RS384("SHA384withRSA", null, 0),
    RS512("SHA512withRSA", null, 0),
    PS256("RSASSA-PSS", "SHA-256", 32),
    PS384("RSASSA-PSS", "SHA-384", 48),
    PS512("RSASSA-PSS", "SHA-512", 64),
    ES256("SHA256withECDSAinP1363Format", "P-256", 64),
    ES384("SHA384withECDSAinP1363Format", "P-384", 96),
    EdDSA("Ed25519", "Ed25519", 64);

    /** RSA keys shorter than this are refused (RFC 7518 3.3 asks for 2048 bits). */
    static final int MIN_RSA_BITS = 2048;

    private final String jdkName;
    /** PSS: the digest; EC and EdDSA: the curve. */
    private final String parameter;
    /** PSS: the salt length; EC and EdDSA: the signature length. */
    private final int size;

    JwtAlgorithm(String jdkName, String parameter, int size) {
        this.jdkName = jdkName;
        this.parameter = parameter;
        this.size = size;
    }

    /** The algorithm named in a token's header, or null when it is not one this waypoint accepts. */
    public static JwtAlgorithm of(String name) {
        if (name == null) {
            return null;
        }
        for (JwtAlgorithm a : values()) {
            if (a.name().equals(name)) {
                return a;
            }
        }
        return null;
    }

    /** Whether a key of the set can verify this algorithm (its type, curve and declared {@code alg}). */
    boolean fits(Jwk key) {
        if (key.alg() != null && !key.alg().equals(name())) {
            return false;
        }
        return switch (this) {
            case RS256, RS384, RS512, PS256, PS384, PS512 -> key.key() instanceof RSAPublicKey;
            case ES256, ES384 -> key.key() instanceof ECPublicKey && parameter.equals(key.curve());
            case EdDSA -> key.key() instanceof EdECPublicKey && parameter.equals(key.curve());
        };
    }

    /** Verifies a signature; a malformed one is simply false. */
    boolean verify(PublicKey key, byte[] signingInput, byte[] signature) {
        if ((this == ES256 || this == ES384 || this == EdDSA) && signature.length != size) {
            return false;
        }
        try {
            Signature s = Signature.getInstance(jdkName);
            if (jdkName.equals("RSASSA-PSS")) {
                s.setParameter(new PSSParameterSpec(parameter, "MGF1", new MGF1ParameterSpec(parameter), size, 1));
            }
            s.initVerify(key);
            s.update(signingInput);
            return s.verify(signature);
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            return false;
        }
    }
}
