package dev.ambient.ztunnel;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.jboss.logmanager.ExtLogRecord;

/**
 * Collects the lines one logger category writes (e.g. the access log, {@code dev.ambient.ztunnel.access}),
 * formatted as the console shows them, so a test can assert that a refusal was logged with its reason.
 */
public final class LogCapture implements AutoCloseable {

    private final Logger logger;
    private final List<String> lines = new CopyOnWriteArrayList<>();
    private final Handler handler = new Handler() {
        @Override
        public void publish(LogRecord record) {
            lines.add(record instanceof ExtLogRecord ext ? ext.getFormattedMessage() : record.getMessage());
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };

    public LogCapture(String category) {
        logger = Logger.getLogger(category);
        handler.setLevel(Level.ALL);
        logger.addHandler(handler);
    }

    /** The access log of every ztunnel in this JVM. */
    public static LogCapture accessLog() {
        return new LogCapture("dev.ambient.ztunnel.access");
    }

    public List<String> lines() {
        return List.copyOf(lines);
    }

    public List<String> matching(Predicate<String> condition) {
        return lines.stream().filter(condition).toList();
    }

    /** Waits (up to 10 s) for a line matching {@code condition} and returns it. */
    public String await(String what, Predicate<String> condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < deadline) {
            for (String l : lines) {
                if (condition.test(l)) {
                    return l;
                }
            }
            Thread.sleep(20);
        }
        throw new AssertionError("no log line " + what + "; the last lines:\n"
                + String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size())));
    }

    /** Waits (up to 10 s) until at least {@code count} lines match; returns how many match then. */
    public int awaitCount(int count, Predicate<String> condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        int seen = matching(condition).size();
        while (seen < count && System.nanoTime() < deadline) {
            Thread.sleep(20);
            seen = matching(condition).size();
        }
        return seen;
    }

    @Override
    public void close() {
        logger.removeHandler(handler);
    }
}
