package dev.ambient.ztunnel.state;

import static java.nio.file.StandardWatchEventKinds.ENTRY_CREATE;
import static java.nio.file.StandardWatchEventKinds.ENTRY_DELETE;
import static java.nio.file.StandardWatchEventKinds.ENTRY_MODIFY;
import static java.nio.file.StandardWatchEventKinds.OVERFLOW;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.WatchEvent;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.Arrays;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.jboss.logging.Logger;

/**
 * Keeps a {@link WorkloadStore} in step with one standalone YAML file.
 *
 * <p>{@link #start()} loads the file once, synchronously, then watches it on a daemon thread. Two
 * mechanisms are combined so that every kind of edit is noticed: a {@link WatchService} on the
 * parent directory (prompt; any event in the directory triggers a check, which covers editors
 * and tools that write a temporary file and rename it over the original, and Kubernetes
 * ConfigMap volumes whose {@code ..data} symlink is swapped), and a check every poll interval
 * (1 s) of the file's modification time, size and file key (inode), following symlinks, for
 * file systems where watching is unsupported or unreliable. After an event the watcher waits a
 * short quiet period so that a file being written in several steps is read once, whole.
 *
 * <p>A change is applied only if the bytes differ from those last tried. A file that does not
 * parse (or cannot be read, or has disappeared, or stays empty across two checks: an empty read
 * is usually an in-place save caught half-way) is logged as one WARN line with the reason and the
 * last good state is kept; the next edit is tried again. To clear the state on purpose, write
 * {@code workloads: []}.
 */
public final class LocalConfigFile implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(LocalConfigFile.class);
    private static final Duration DEFAULT_POLL = Duration.ofSeconds(1);
    private static final Duration QUIET_PERIOD = Duration.ofMillis(50);

    private final Path file;
    private final LocalConfigParser parser;
    private final WorkloadStore store;
    private final Duration pollInterval;
    private final boolean useWatchService;

    private final AtomicLong reloads = new AtomicLong();
    private final AtomicLong rejectedReloads = new AtomicLong();
    private volatile String lastError;

    private volatile boolean closed;
    private Thread watcher;
    private WatchService watchService;

    // touched by start() and then only by the watcher thread (check is synchronized)
    private Fingerprint lastSeen;
    private byte[] lastTried;
    private boolean emptyOnce;
    private String lastReadError;

    public LocalConfigFile(Path file, LocalConfigParser parser, WorkloadStore store) {
        this(file, parser, store, DEFAULT_POLL);
    }

    /** As above, with a different poll interval (tests, slow file systems). */
    public LocalConfigFile(Path file, LocalConfigParser parser, WorkloadStore store, Duration pollInterval) {
        this(file, parser, store, pollInterval, true);
    }

    /** {@code useWatchService} false: poll only (tests of the fallback). */
    LocalConfigFile(Path file, LocalConfigParser parser, WorkloadStore store, Duration pollInterval,
            boolean useWatchService) {
        this.useWatchService = useWatchService;
        this.file = Objects.requireNonNull(file, "file").toAbsolutePath();
        this.parser = Objects.requireNonNull(parser, "parser");
        this.store = Objects.requireNonNull(store, "store");
        this.pollInterval = Objects.requireNonNull(pollInterval, "pollInterval");
        if (pollInterval.isNegative() || pollInterval.isZero()) {
            throw new IllegalArgumentException("pollInterval must be positive");
        }
    }

    /**
     * Loads the file into the store, then starts watching it.
     *
     * @throws LocalConfigException if the file cannot be read or is not valid; nothing is started
     * @throws IllegalStateException if already started or closed
     */
    public synchronized void start() throws LocalConfigException {
        if (watcher != null || closed) {
            throw new IllegalStateException("already started or closed");
        }
        Fingerprint fingerprint = fingerprint();
        byte[] content;
        try {
            content = Files.readAllBytes(file);
        } catch (IOException e) {
            lastError = describe(e);
            throw new LocalConfigException(file + ": " + lastError, e);
        }
        StateSnapshot snapshot;
        try {
            snapshot = parser.parse(new String(content, StandardCharsets.UTF_8));
        } catch (LocalConfigException e) {
            lastError = e.getMessage();
            throw new LocalConfigException(file.toString(), e);
        }
        store.replace(snapshot);
        lastSeen = fingerprint;
        lastTried = content;
        LOG.infof("Loaded %s: %s", file, summary(snapshot));

        Path dir = file.getParent();
        if (useWatchService) {
            try {
                watchService = file.getFileSystem().newWatchService();
                dir.register(watchService, ENTRY_CREATE, ENTRY_MODIFY, ENTRY_DELETE);
            } catch (IOException | UnsupportedOperationException e) {
                LOG.debugf("Cannot watch %s (%s); polling every %s", dir, e, pollInterval);
                closeWatchService();
            }
        }
        watcher = Thread.ofPlatform().daemon().name("local-config-" + file.getFileName()).unstarted(this::watch);
        watcher.start();
    }

    /** Stops watching; the store keeps its state. Idempotent. */
    @Override
    public void close() {
        Thread t;
        synchronized (this) {
            closed = true;
            t = watcher;
            closeWatchService();
        }
        if (t != null && t != Thread.currentThread()) {
            t.interrupt();
            try {
                t.join(TimeUnit.SECONDS.toMillis(2));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Successful reloads after the initial load. */
    public long reloads() {
        return reloads.get();
    }

    /** Changes that were rejected (unreadable, missing or invalid file); the state was kept. */
    public long rejectedReloads() {
        return rejectedReloads.get();
    }

    /** Why the file on disk is not in force, if it is not; cleared by the next good load. */
    public Optional<String> lastError() {
        return Optional.ofNullable(lastError);
    }

    public Path file() {
        return file;
    }

    private void watch() {
        WatchService ws = watchService;
        while (!closed) {
            boolean force = false;
            try {
                if (ws != null) {
                    WatchKey key = ws.poll(pollInterval.toMillis(), TimeUnit.MILLISECONDS);
                    if (key != null) {
                        force = drain(key);
                        // let a multi-step write finish, and gather its other events
                        Thread.sleep(QUIET_PERIOD.toMillis());
                        for (WatchKey more = ws.poll(); more != null; more = ws.poll()) {
                            force |= drain(more);
                        }
                    }
                } else {
                    Thread.sleep(pollInterval.toMillis());
                }
            } catch (InterruptedException | ClosedWatchServiceException e) {
                if (closed) {
                    return;
                }
                Thread.currentThread().interrupt();
                return;
            }
            if (closed) {
                return;
            }
            try {
                check(force);
            } catch (RuntimeException e) {
                // never let the watcher die; the next change is tried again
                LOG.errorf(e, "Unexpected failure reloading %s", file);
            }
        }
    }

    /** Consumes the events of one key; true if one names our file (or events were lost). */
    private boolean drain(WatchKey key) {
        boolean ours = false;
        for (WatchEvent<?> event : key.pollEvents()) {
            if (event.kind() == OVERFLOW || file.getFileName().equals(event.context())) {
                ours = true;
            }
        }
        if (!key.reset()) {
            LOG.debugf("Watch on %s is no longer valid; polling", file.getParent());
        }
        return ours;
    }

    private synchronized void check(boolean force) {
        Fingerprint now = fingerprint();
        if (!force && Objects.equals(now, lastSeen)) {
            return;
        }
        lastSeen = now;
        byte[] content;
        try {
            content = Files.readAllBytes(file);
        } catch (IOException e) {
            String reason = describe(e);
            if (!reason.equals(lastReadError)) { // report once, not on every poll
                lastReadError = reason;
                lastTried = null;
                reject(reason);
            }
            return;
        }
        lastReadError = null;
        if (Arrays.equals(content, lastTried)) {
            return;
        }
        if (content.length == 0 && !emptyOnce) {
            // most likely caught between truncate and write of an in-place save: look again soon
            emptyOnce = true;
            lastSeen = null;
            return;
        }
        emptyOnce = false;
        lastTried = content;
        if (content.length == 0) {
            reject("file is empty (write 'workloads: []' to clear the state)");
            return;
        }
        StateSnapshot snapshot;
        try {
            snapshot = parser.parse(new String(content, StandardCharsets.UTF_8));
        } catch (LocalConfigException e) {
            reject(e.getMessage());
            return;
        }
        store.replace(snapshot);
        lastError = null;
        reloads.incrementAndGet();
        LOG.infof("Reloaded %s: %s", file, summary(snapshot));
    }

    private void reject(String reason) {
        String line = LocalConfigParser.oneLine(reason);
        lastError = line;
        rejectedReloads.incrementAndGet();
        LOG.warnf("Rejected %s, keeping the last good state: %s", file, line);
    }

    private Fingerprint fingerprint() {
        try {
            BasicFileAttributes a = Files.readAttributes(file, BasicFileAttributes.class);
            return new Fingerprint(a.lastModifiedTime(), a.size(), a.fileKey());
        } catch (IOException e) {
            return null;
        }
    }

    private void closeWatchService() {
        if (watchService != null) {
            try {
                watchService.close();
            } catch (IOException e) {
                LOG.debugf("Closing the watch service: %s", e);
            }
            watchService = null;
        }
    }

    private static String describe(IOException e) {
        if (e instanceof NoSuchFileException) {
            return "file is missing";
        }
        if (e instanceof AccessDeniedException) {
            return "cannot read: permission denied";
        }
        return "cannot read: " + e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
    }

    private static String summary(StateSnapshot s) {
        return s.workloads().size() + " workloads, " + s.services().size() + " services, " + s.policies().size()
                + " policies, " + s.peerAuthentications().size() + " peer authentications";
    }

    private record Fingerprint(FileTime modified, long size, Object fileKey) {}
}
