package dev.ambient.waypoint.authn;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ambient.proto.l7.JwtRule;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * Verifies one token against the JWT rules that may have issued it, in Envoy jwt_authn's order:
 * form, header ({@code alg} among {@link JwtAlgorithm}s: never {@code none}, never HMAC), payload,
 * issuer, time ({@code exp}, {@code nbf}, with a clock skew), audiences, then the signature with the
 * issuer's keys. Pure: the keys and the time are handed in, so a result that needs keys not yet
 * at hand says so ({@link NeedsKeys}) and the caller fetches them without blocking.
 */
public final class JwtVerifier {

    /** What verifying a token came to. */
    public sealed interface Result permits Verified, Refused, NeedsKeys {
    }

    /** The token is good: its rule, what it says, and its payload segment as received (base64url). */
    public record Verified(JwtRule rule, RequestAuth auth, String payloadSegment) implements Result {
    }

    public record Refused(AuthnFailure failure, String detail) implements Result {
    }

    /**
     * The rule's keys are not loaded yet ({@code unknownKid} false), or none of them fits the token
     * ({@code unknownKid} true: the issuer may have rotated its keys).
     */
    public record NeedsKeys(JwtRule rule, boolean unknownKid) implements Result {
    }

    /** The keys of a rule's JWKS as this waypoint holds them now, or null when none are held yet. */
    @FunctionalInterface
    public interface Keys {
        JwkSet of(JwtRule rule);
    }

    private final int maxTokenBytes;
    private final long clockSkewSeconds;

    public JwtVerifier(int maxTokenBytes, long clockSkewSeconds) {
        this.maxTokenBytes = maxTokenBytes;
        this.clockSkewSeconds = clockSkewSeconds;
    }

    long clockSkewSeconds() {
        return clockSkewSeconds;
    }

    public Result verify(String token, List<JwtRule> rules, Keys keys, long nowSeconds) {
        if (token.length() > maxTokenBytes) {
            return new Refused(AuthnFailure.TOO_LARGE, "token of " + token.length() + " bytes (limit " + maxTokenBytes + ")");
        }
        int d1 = token.indexOf('.');
        int d2 = d1 < 0 ? -1 : token.indexOf('.', d1 + 1);
        if (d1 <= 0 || d2 < 0 || token.indexOf('.', d2 + 1) >= 0 || d2 == d1 + 1) {
            return new Refused(AuthnFailure.BAD_FORMAT, "not three dot-separated sections");
        }
        String headerPart = token.substring(0, d1);
        String payloadPart = token.substring(d1 + 1, d2);
        String signaturePart = token.substring(d2 + 1);

        byte[] raw = base64url(headerPart);
        if (raw == null) {
            return new Refused(AuthnFailure.HEADER_BASE64, "header");
        }
        JsonNode header = json(raw);
        if (header == null || !header.isObject()) {
            return new Refused(AuthnFailure.HEADER_JSON, "header");
        }
        JsonNode algNode = header.get("alg");
        if (algNode == null || !algNode.isTextual()) {
            return new Refused(AuthnFailure.BAD_ALG, "header");
        }
        JwtAlgorithm alg = JwtAlgorithm.of(algNode.asText());
        if (alg == null) {
            return new Refused(AuthnFailure.UNSUPPORTED_ALG, "alg " + printable(algNode.asText()));
        }
        JsonNode kidNode = header.get("kid");
        if (kidNode != null && !kidNode.isTextual()) {
            return new Refused(AuthnFailure.BAD_KID, "header");
        }
        String kid = kidNode == null ? null : kidNode.asText();

        raw = base64url(payloadPart);
        if (raw == null) {
            return new Refused(AuthnFailure.PAYLOAD_BASE64, "payload");
        }
        JsonNode payload = json(raw);
        if (payload == null || !payload.isObject()) {
            return new Refused(AuthnFailure.PAYLOAD_JSON, "payload");
        }
        byte[] signature = base64url(signaturePart);
        if (signature == null) {
            return new Refused(AuthnFailure.SIGNATURE_BASE64, "signature");
        }
        JsonNode iss = payload.get("iss");
        if (iss != null && !iss.isTextual()) {
            return new Refused(AuthnFailure.ISS_NOT_STRING, "payload");
        }
        JsonNode sub = payload.get("sub");
        if (sub != null && !sub.isTextual()) {
            return new Refused(AuthnFailure.SUB_NOT_STRING, "payload");
        }
        JsonNode exp = payload.get("exp");
        if (exp != null && !exp.canConvertToLong()) {
            return new Refused(AuthnFailure.EXP_NOT_INTEGER, "payload");
        }
        JsonNode nbf = payload.get("nbf");
        if (nbf != null && !nbf.canConvertToLong()) {
            return new Refused(AuthnFailure.NBF_NOT_INTEGER, "payload");
        }
        List<String> audiences = strings(payload.get("aud"));
        if (audiences == null) {
            return new Refused(AuthnFailure.AUD_NOT_STRINGS, "payload");
        }

        String issuer = iss == null ? "" : iss.asText();
        JwtRule rule = null;
        for (JwtRule r : rules) {
            if (r.getIssuer().equals(issuer)) {
                rule = r;
                break;
            }
        }
        if (rule == null) {
            return new Refused(AuthnFailure.UNKNOWN_ISSUER, "iss " + printable(issuer));
        }
        if (exp != null && nowSeconds > exp.asLong() + clockSkewSeconds) {
            return new Refused(AuthnFailure.EXPIRED, "exp " + exp.asLong() + ", now " + nowSeconds);
        }
        if (nbf != null && nowSeconds + clockSkewSeconds < nbf.asLong()) {
            return new Refused(AuthnFailure.NOT_YET_VALID, "nbf " + nbf.asLong() + ", now " + nowSeconds);
        }
        if (rule.getAudiencesCount() > 0 && audiences.stream().noneMatch(rule.getAudiencesList()::contains)) {
            return new Refused(AuthnFailure.AUDIENCE_NOT_ALLOWED, "aud " + printable(String.valueOf(audiences)));
        }

        JwkSet set = keys.of(rule);
        if (set == null) {
            return new NeedsKeys(rule, false);
        }
        byte[] signingInput = token.substring(0, d2).getBytes(StandardCharsets.US_ASCII);
        boolean anyKey = false;
        for (Jwk key : set.keys()) {
            if (kid != null && key.kid() != null && !kid.equals(key.kid())) {
                continue;
            }
            if (!alg.fits(key)) {
                continue;
            }
            anyKey = true;
            if (alg.verify(key.key(), signingInput, signature)) {
                JsonNode azp = payload.get("azp");
                RequestAuth auth = new RequestAuth(issuer + "/" + (sub == null ? "" : sub.asText()),
                        List.copyOf(audiences), azp != null && azp.isTextual() ? azp.asText() : null, payload);
                return new Verified(rule, auth, payloadPart);
            }
        }
        if (!anyKey) {
            return new NeedsKeys(rule, true);
        }
        return new Refused(AuthnFailure.VERIFICATION_FAILS, "signature of kid " + printable(String.valueOf(kid))
                + " (" + alg + ") does not verify");
    }

    /** A string or a list of strings; null when the claim has another form. */
    private static List<String> strings(JsonNode n) {
        if (n == null) {
            return List.of();
        }
        if (n.isTextual()) {
            return List.of(n.asText());
        }
        if (!n.isArray()) {
            return null;
        }
        List<String> out = new ArrayList<>();
        for (JsonNode e : n) {
            if (!e.isTextual()) {
                return null;
            }
            out.add(e.asText());
        }
        return out;
    }

    /** Base64url without padding, strictly (RFC 7515 2); null when it is not. */
    private static byte[] base64url(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
                return null;
            }
        }
        try {
            return Base64.getUrlDecoder().decode(s);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    private static JsonNode json(byte[] raw) {
        try {
            return JwkSet.JSON.readTree(raw);
        } catch (Exception e) {
            return null;
        }
    }

    /** A client's text, cut and made safe for one log line. */
    static String printable(String s) {
        String cut = s.length() > 64 ? s.substring(0, 64) + "..." : s;
        return cut.replaceAll("[^\\x20-\\x7e]", "?");
    }
}
