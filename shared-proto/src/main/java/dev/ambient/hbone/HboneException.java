package dev.ambient.hbone;

/** A CONNECT that did not result in a tunnel: the HTTP status and why. */
public final class HboneException extends Exception {

    /** Status for failures before any response (handshake, connection refused, reset). */
    public static final int NO_RESPONSE = 0;

    private final int status;

    public HboneException(int status, String reason) {
        super(reason);
        this.status = status;
    }

    public HboneException(int status, String reason, Throwable cause) {
        super(reason, cause);
        this.status = status;
    }

    public int status() {
        return status;
    }
}
