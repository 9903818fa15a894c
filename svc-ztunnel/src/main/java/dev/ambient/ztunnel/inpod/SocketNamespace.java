package dev.ambient.ztunnel.inpod;

import io.netty.channel.Channel;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;

/**
 * Where the ztunnel's sockets for one source are born. A socket's network namespace is fixed
 * when it is created, so code that creates sockets (a Bootstrap's connect or bind, a pool that
 * may dial) runs through {@link #create}: inline for the ztunnel's own namespace, on a worker
 * thread that has entered the pod's namespace for an in-pod workload. Everything after creation
 * (register, connect, read, write) happens on the data-plane event loops as usual.
 */
public interface SocketNamespace {

    /** The ztunnel's own namespace: creation runs inline on the calling thread, at no extra cost. */
    SocketNamespace HOST = new SocketNamespace() {
        @Override
        public String name() {
            return "host";
        }

        @Override
        public <T> CompletableFuture<T> create(Callable<T> creation) {
            try {
                return CompletableFuture.completedFuture(creation.call());
            } catch (Exception e) {
                return CompletableFuture.failedFuture(e);
            }
        }
    };

    /** For logs and the config dump. */
    String name();

    /**
     * Runs {@code creation} with the calling thread inside this namespace. Only the creation of
     * socket objects belongs here; it must not block. Completes on the thread that ran it.
     */
    <T> CompletableFuture<T> create(Callable<T> creation);

    /** Counts a proxied connection's socket, so that a pod being removed can wait for it to end. */
    default void track(Channel connection) {
    }
}
