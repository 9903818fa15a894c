package dev.ambient.ztunnel;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A well-behaved client that keeps making requests on a thread of its own while a test attacks the
 * ztunnel, so the test can show (and print) that traffic of other pods kept flowing.
 */
public final class GoodTraffic implements AutoCloseable {

    /** What the good client saw: requests that worked, failed, over how long. */
    public record Stats(long ok, long failed, long millis, List<String> failures) {
        public double perSecond() {
            return millis == 0 ? 0 : ok * 1000.0 / millis;
        }

        @Override
        public String toString() {
            return String.format("%d requests ok, %d failed in %d ms (%.0f/s)%s", ok, failed, millis, perSecond(),
                    failures.isEmpty() ? "" : "; first failures: " + failures.subList(0, Math.min(3, failures.size())));
        }
    }

    private final AtomicLong ok = new AtomicLong();
    private final AtomicLong failed = new AtomicLong();
    private final List<String> failures = new CopyOnWriteArrayList<>();
    private final long start = System.nanoTime();
    private final Thread thread;
    private volatile boolean running = true;

    /** @param request one request; true when it got the expected answer */
    public GoodTraffic(String name, Callable<Boolean> request) {
        thread = Thread.ofPlatform().daemon().name("good-traffic-" + name).start(() -> {
            while (running) {
                try {
                    if (request.call()) {
                        ok.incrementAndGet();
                    } else {
                        failed.incrementAndGet();
                        failures.add("wrong answer");
                    }
                } catch (Exception e) {
                    if (running) {
                        failed.incrementAndGet();
                        failures.add(String.valueOf(e));
                    }
                }
            }
        });
    }

    /** Stops after the request in flight and returns what was seen. */
    public Stats stop() throws InterruptedException {
        running = false;
        thread.join(30_000);
        return new Stats(ok.get(), failed.get(), (System.nanoTime() - start) / 1_000_000, new ArrayList<>(failures));
    }

    @Override
    public void close() throws InterruptedException {
        stop();
    }
}
