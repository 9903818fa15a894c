package dev.ambient.waypoint.authn;

import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.math.BigInteger;
import java.security.AlgorithmParameters;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.ECParameterSpec;
import java.security.spec.ECPoint;
import java.security.spec.ECPublicKeySpec;
import java.security.spec.RSAPublicKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;

/**
 * A JSON Web Key Set (RFC 7517) read into JDK public keys: RSA ({@code n}, {@code e}), EC P-256 and
 * P-384 ({@code x}, {@code y}) and OKP Ed25519 ({@code x}). Keys for encryption ({@code use: enc}),
 * private keys, symmetric keys and those it cannot read are skipped; a set with no usable key is an
 * error, so a broken document never replaces good keys.
 */
public record JwkSet(List<Jwk> keys) {

    /** At most this many keys are read from one document. */
    static final int MAX_KEYS = 64;
    /** Duplicate names refused: a token whose header or payload says two things says nothing. */
    static final ObjectMapper JSON = JsonMapper.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();

    static {
        JSON.getFactory().setStreamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(32)
                .maxStringLength(64 * 1024).build());
    }

    /** Why a document is not a usable key set. */
    public static final class Invalid extends Exception {
        Invalid(String message) {
            super(message);
        }
    }

    private static final byte[] ED25519_SPKI_PREFIX = HexFormat.of().parseHex("302a300506032b6570032100");

    public static JwkSet parse(String json, int maxBytes) throws Invalid {
        if (json.length() > maxBytes) {
            throw new Invalid("the key set is larger than " + maxBytes + " bytes");
        }
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (Exception e) {
            throw new Invalid("the key set is not JSON");
        }
        if (root == null || !root.path("keys").isArray()) {
            throw new Invalid("the key set has no \"keys\" array");
        }
        List<Jwk> keys = new ArrayList<>();
        List<String> skipped = new ArrayList<>();
        for (JsonNode k : root.path("keys")) {
            if (keys.size() == MAX_KEYS) {
                skipped.add("keys beyond the first " + MAX_KEYS);
                break;
            }
            try {
                Jwk jwk = key(k);
                if (jwk != null) {
                    keys.add(jwk);
                }
            } catch (Invalid | GeneralSecurityException | IllegalArgumentException e) {
                skipped.add(text(k, "kid") + ": " + e.getMessage());
            }
        }
        if (keys.isEmpty()) {
            throw new Invalid("the key set holds no usable public key" + (skipped.isEmpty() ? "" : " " + skipped));
        }
        return new JwkSet(List.copyOf(keys));
    }

    /** A signature key, or null for one that is not for signatures (skipped silently). */
    private static Jwk key(JsonNode k) throws Invalid, GeneralSecurityException {
        if (!k.isObject()) {
            throw new Invalid("not an object");
        }
        String use = text(k, "use");
        if (use != null && !use.equals("sig")) {
            return null;
        }
        if (k.has("d") || k.has("k")) {
            throw new Invalid("a private or symmetric key has no place in a public key set");
        }
        String kid = text(k, "kid");
        String alg = text(k, "alg");
        if (alg != null && JwtAlgorithm.of(alg) == null) {
            throw new Invalid("alg " + alg + " is not supported");
        }
        String kty = text(k, "kty");
        if (kty == null) {
            throw new Invalid("kty is missing");
        }
        return switch (kty) {
            case "RSA" -> {
                RSAPublicKey key = (RSAPublicKey) KeyFactory.getInstance("RSA").generatePublic(
                        new RSAPublicKeySpec(unsigned(k, "n"), unsigned(k, "e")));
                if (key.getModulus().bitLength() < JwtAlgorithm.MIN_RSA_BITS) {
                    throw new Invalid("RSA key shorter than " + JwtAlgorithm.MIN_RSA_BITS + " bits");
                }
                yield new Jwk(kid, alg, null, key);
            }
            case "EC" -> {
                String crv = text(k, "crv");
                String jdkCurve = "P-256".equals(crv) ? "secp256r1" : "P-384".equals(crv) ? "secp384r1" : null;
                if (jdkCurve == null) {
                    throw new Invalid("EC curve " + crv + " is not supported");
                }
                AlgorithmParameters params = AlgorithmParameters.getInstance("EC");
                params.init(new ECGenParameterSpec(jdkCurve));
                ECParameterSpec spec = params.getParameterSpec(ECParameterSpec.class);
                PublicKey key = KeyFactory.getInstance("EC").generatePublic(
                        new ECPublicKeySpec(new ECPoint(unsigned(k, "x"), unsigned(k, "y")), spec));
                yield new Jwk(kid, alg, crv, key);
            }
            case "OKP" -> {
                if (!"Ed25519".equals(text(k, "crv"))) {
                    throw new Invalid("OKP curve " + text(k, "crv") + " is not supported");
                }
                byte[] x = bytes(k, "x");
                if (x.length != 32) {
                    throw new Invalid("Ed25519 x must be 32 bytes");
                }
                byte[] spki = new byte[ED25519_SPKI_PREFIX.length + 32];
                System.arraycopy(ED25519_SPKI_PREFIX, 0, spki, 0, ED25519_SPKI_PREFIX.length);
                System.arraycopy(x, 0, spki, ED25519_SPKI_PREFIX.length, 32);
                yield new Jwk(kid, alg, "Ed25519", KeyFactory.getInstance("Ed25519")
                        .generatePublic(new X509EncodedKeySpec(spki)));
            }
            default -> throw new Invalid("kty " + kty + " is not supported");
        };
    }

    private static String text(JsonNode k, String field) {
        JsonNode v = k.get(field);
        return v != null && v.isTextual() ? v.asText() : null;
    }

    private static byte[] bytes(JsonNode k, String field) throws Invalid {
        String v = text(k, field);
        if (v == null || v.isEmpty()) {
            throw new Invalid(field + " is missing");
        }
        try {
            return Base64.getUrlDecoder().decode(v);
        } catch (IllegalArgumentException e) {
            throw new Invalid(field + " is not base64url");
        }
    }

    private static BigInteger unsigned(JsonNode k, String field) throws Invalid {
        return new BigInteger(1, bytes(k, field));
    }
}
