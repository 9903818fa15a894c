package dev.ambient.auth;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;

/**
 * Why a caller was not authenticated. The message is for the caller and the log, in words an
 * operator can act on; it never repeats the token.
 */
public final class AuthenticationFailure extends RuntimeException {

    /** The kinds of failure; each maps to one gRPC status. */
    public enum Kind {
        /** No token, a malformed one, or one that is not valid (for our audience). */
        UNAUTHENTICATED(Status.UNAUTHENTICATED),
        /** The token cannot be checked right now (the API server does not answer): retry. */
        UNAVAILABLE(Status.UNAVAILABLE),
        /** Too many tokens are being checked at once (from this address, or in all): retry. */
        BUSY(Status.UNAVAILABLE);

        private final Status status;

        Kind(Status status) {
            this.status = status;
        }

        public Status status() {
            return status;
        }
    }

    private final Kind kind;

    public AuthenticationFailure(Kind kind, String message) {
        super(message, null, false, false);
        this.kind = kind;
    }

    public AuthenticationFailure(Kind kind, String message, Throwable cause) {
        super(message, cause, false, false);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }

    public StatusRuntimeException toStatus() {
        return kind.status().withDescription(getMessage()).asRuntimeException();
    }

    static AuthenticationFailure unauthenticated(String message) {
        return new AuthenticationFailure(Kind.UNAUTHENTICATED, message);
    }

    static AuthenticationFailure unavailable(String message) {
        return new AuthenticationFailure(Kind.UNAVAILABLE, message);
    }

    static AuthenticationFailure busy(String message) {
        return new AuthenticationFailure(Kind.BUSY, message);
    }
}
