package dev.ambient.waypoint.authn;

/**
 * Why a token was refused: Envoy's jwt_authn status for it (the body Istio users see and search
 * for), the HTTP status, and the metric tag.
 */
public enum AuthnFailure {
    BAD_FORMAT("Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections", "malformed"),
    HEADER_BASE64("Jwt header is an invalid Base64url encoded", "malformed"),
    HEADER_JSON("Jwt header is an invalid JSON", "malformed"),
    BAD_ALG("Jwt header [alg] field is required and must be a string", "malformed"),
    UNSUPPORTED_ALG("Jwt header [alg] is not supported", "unsupported_alg"),
    BAD_KID("Jwt header [kid] field is not a string", "malformed"),
    PAYLOAD_BASE64("Jwt payload is an invalid Base64url encoded", "malformed"),
    PAYLOAD_JSON("Jwt payload is an invalid JSON", "malformed"),
    SIGNATURE_BASE64("Jwt signature is an invalid Base64url encoded", "malformed"),
    ISS_NOT_STRING("Jwt payload [iss] field is not a string", "malformed"),
    SUB_NOT_STRING("Jwt payload [sub] field is not a string", "malformed"),
    EXP_NOT_INTEGER("Jwt payload [exp] field is not an integer", "malformed"),
    NBF_NOT_INTEGER("Jwt payload [nbf] field is not an integer", "malformed"),
    AUD_NOT_STRINGS("Jwt payload [aud] field is not a string or string list", "malformed"),
    UNKNOWN_ISSUER("Jwt issuer is not configured", "unknown_issuer"),
    EXPIRED("Jwt is expired", "expired"),
    NOT_YET_VALID("Jwt not yet valid", "not_yet_valid"),
    AUDIENCE_NOT_ALLOWED("Audiences in Jwt are not allowed", "audience_not_allowed", 403),
    NO_MATCHING_KEY("Jwks doesn't have key to match kid or alg from Jwt", "no_matching_key"),
    JWKS_FETCH_FAILED("Jwks remote fetch is failed", "jwks_unavailable"),
    VERIFICATION_FAILS("Jwt verification fails", "bad_signature"),
    /** Ours: a token beyond the size bound is not decoded at all. */
    TOO_LARGE("Jwt verification fails", "too_large"),
    /** Ours: more tokens in one request than any policy could ask for. */
    TOO_MANY("Jwt verification fails", "too_many_tokens"),
    /** Ours: the peer's tokens failed their signature too often lately; not verified ({@link SignatureFailureBudget}). */
    SIGNATURE_BUDGET_SPENT("Jwt verification fails", "bad_signature_budget");

    private final String body;
    private final String tag;
    private final int status;

    AuthnFailure(String body, String tag) {
        this(body, tag, 401);
    }

    AuthnFailure(String body, String tag, int status) {
        this.body = body;
        this.tag = tag;
        this.status = status;
    }

    /** Envoy's text, sent as the response body. */
    public String body() {
        return body;
    }

    public String tag() {
        return tag;
    }

    public int status() {
        return status;
    }
}
