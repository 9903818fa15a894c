package dev.ambient.ztunnel.inpod;

import dev.ambient.net.NetworkNamespace;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The platform threads ({@code ztunnel-netns-*}) that enter pod network namespaces to create
 * sockets, behind a bounded queue. Event loops hand creations here and never wait: when the queue
 * is full a creation is shed at once with {@link Shed}, counted, and its connection refused and
 * logged by the proxy that asked, so a burst of connections can neither grow memory without bound
 * nor delay every pod's new connections behind it.
 */
public final class SocketThreads implements AutoCloseable {

    /** A socket creation refused because the queue was full. */
    public static final class Shed extends RejectedExecutionException {
        Shed(String message) {
            super(message);
        }
    }

    private final ThreadPoolExecutor executor;
    private final int queueCapacity;
    private final Counter shed;

    /**
     * @param threads platform threads (setns moves an OS thread, so a virtual thread could hop
     *        carriers mid-task)
     * @param queueCapacity creations that may wait for a thread; more are shed
     */
    public SocketThreads(int threads, int queueCapacity, MeterRegistry registry) {
        this.queueCapacity = Math.max(1, queueCapacity);
        AtomicInteger n = new AtomicInteger();
        this.executor = new ThreadPoolExecutor(Math.max(1, threads), Math.max(1, threads), 0, TimeUnit.MILLISECONDS,
                new ArrayBlockingQueue<>(this.queueCapacity), r -> {
                    Thread t = new Thread(r, "ztunnel-netns-" + n.incrementAndGet());
                    t.setDaemon(true);
                    return t;
                }, new ThreadPoolExecutor.AbortPolicy());
        this.shed = Counter.builder("ztunnel_inpod_socket_creations_shed")
                .description("Socket creations inside pod namespaces refused because the socket threads' queue"
                        + " was full (ztunnel.inpod.socket-queue); each one's connection was refused")
                .register(registry);
        Gauge.builder("ztunnel_inpod_socket_creations_queued", executor, e -> e.getQueue().size())
                .description("Socket creations waiting for a socket thread").register(registry);
    }

    /** Runs {@code creation} on a socket thread inside {@code netns}; fails with {@link Shed} when full. */
    <T> CompletableFuture<T> create(NetworkNamespace netns, Callable<T> creation) {
        try {
            return CompletableFuture.supplyAsync(() -> {
                try {
                    return netns.call(creation);
                } catch (RuntimeException e) {
                    throw e;
                } catch (Exception e) {
                    throw new CompletionException(e);
                }
            }, executor);
        } catch (RejectedExecutionException e) {
            if (executor.isShutdown()) {
                return CompletableFuture.failedFuture(new IllegalStateException("ztunnel is shutting down"));
            }
            shed.increment();
            return CompletableFuture.failedFuture(new Shed("socket threads busy: " + queueCapacity
                    + " socket creations already queued (ztunnel.inpod.socket-queue); connection shed"));
        }
    }

    /** Creations waiting for a thread now. */
    public int queued() {
        return executor.getQueue().size();
    }

    /** Creations shed so far. */
    public long shedCount() {
        return (long) shed.count();
    }

    @Override
    public void close() {
        executor.shutdownNow();
    }
}
