package dev.ambient.ztunnel;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;

/**
 * This JVM's open file descriptors, as the kernel counts them ({@code /proc/self/fd}); the ztunnels
 * under test run in this JVM, so a connection loop shows here as thousands of sockets.
 */
public final class OpenFiles {

    private OpenFiles() {
    }

    public static long count() {
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Samples the count every 10 ms on a thread of its own until closed; keeps the highest seen. */
    public static final class Peak implements AutoCloseable {
        private final AtomicLong peak = new AtomicLong(count());
        private final Thread sampler;
        private volatile boolean running = true;

        public Peak() {
            sampler = Thread.ofPlatform().daemon().name("fd-sampler").start(() -> {
                while (running) {
                    peak.accumulateAndGet(count(), Math::max);
                    try {
                        Thread.sleep(10);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            });
        }

        public long peak() {
            return peak.get();
        }

        @Override
        public void close() throws InterruptedException {
            running = false;
            sampler.join(1_000);
        }
    }
}
