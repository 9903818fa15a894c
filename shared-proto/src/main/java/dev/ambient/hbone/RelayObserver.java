package dev.ambient.hbone;

/**
 * Told of bytes as they cross a tunnel, so metrics stay live for long connections. Called on
 * event loops: implementations must be cheap and never block.
 */
public interface RelayObserver {

    RelayObserver NONE = new RelayObserver() {
    };

    /** Bytes read from the plain TCP side and sent into the tunnel. */
    default void intoTunnel(int bytes) {
    }

    /** Bytes received from the tunnel and written to the plain TCP side. */
    default void outOfTunnel(int bytes) {
    }
}
