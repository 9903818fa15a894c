package dev.ambient.ca;

/**
 * Why a certificate request was not answered with a certificate. The message is for the caller
 * and the log, so it says what was wrong in words an operator can act on.
 */
public final class Refusal extends RuntimeException {

    /** The kinds of refusal; each maps to one gRPC status code and one metric tag. */
    public enum Reason {
        /** No token, or the token is not valid. */
        UNAUTHENTICATED("unauthenticated"),
        /** The CSR or the request's metadata is malformed. */
        INVALID_REQUEST("invalid_request"),
        /** The caller may not have the identity (or the server names) it asks for. */
        PERMISSION_DENIED("permission_denied"),
        /** A check needs the Kubernetes API and the API did not answer. */
        KUBERNETES_UNAVAILABLE("kubernetes_unavailable"),
        /** Too many tokens are being checked at once (a flood of new tokens): retry. */
        BUSY("busy"),
        /** The root of trust is not loaded yet. */
        NOT_READY("not_ready"),
        /** Signing itself failed (expired signer, say). */
        SIGNING_FAILED("signing_failed");

        private final String tag;

        Reason(String tag) {
            this.tag = tag;
        }

        /** The value of the {@code reason} metric tag. */
        public String tag() {
            return tag;
        }
    }

    private final Reason reason;

    public Refusal(Reason reason, String message) {
        super(message, null, false, false);
        this.reason = reason;
    }

    public Refusal(Reason reason, String message, Throwable cause) {
        super(message, cause, false, false);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
