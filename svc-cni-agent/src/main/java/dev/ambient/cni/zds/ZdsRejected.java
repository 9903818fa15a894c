package dev.ambient.cni.zds;

/** The ztunnel answered a request with an error, or could not be asked in time. */
public final class ZdsRejected extends Exception {
    public ZdsRejected(String message) {
        super(message);
    }
}
