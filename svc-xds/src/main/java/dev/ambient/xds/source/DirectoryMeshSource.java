package dev.ambient.xds.source;

import dev.ambient.xds.translate.MeshInput;
import dev.ambient.xds.translate.MeshTranslator;
import dev.ambient.xds.translate.Problem;
import dev.ambient.yaml.YamlDirectory;
import io.fabric8.kubernetes.api.model.HasMetadata;
import java.io.IOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;

/**
 * The mesh read from a directory of Kubernetes-style YAML ({@code *.yaml}, {@code *.yml},
 * recursively; names starting with "." are skipped, so editor swap files and the hidden
 * directories of a mounted ConfigMap are not read twice). The "mesh in a box": pods there are
 * network namespaces whose addresses the user writes in {@code status.podIP(s)}, with
 * {@code spec.nodeName} and {@code status.phase: Running} (and a Ready condition to be HEALTHY).
 *
 * <p>Changes are seen through a {@link WatchService} and, as a safety net, a rescan every
 * {@code rescanInterval}; only changed files are parsed again. A file that cannot be read is
 * reported (file name and reason) and its last good objects stay in force while the other files
 * still apply. Kinds the mesh does not use are ignored (logged at debug).
 */
public final class DirectoryMeshSource extends AbstractMeshSource {

    private record FileState(long modified, long size, List<HasMetadata> objects, String error) {
    }

    private final Path root;
    private final Duration debounce;
    private final Duration rescanInterval;
    private final Map<Path, FileState> files = new TreeMap<>();
    private final Set<Path> watchedDirs = new HashSet<>();
    private final AtomicBoolean rescanPending = new AtomicBoolean();
    private volatile WatchService watchService;
    private volatile boolean scannedOnce;
    private volatile boolean rootMissing;
    private Thread watcher;

    public DirectoryMeshSource(Path root, MeshTranslator translator, Duration debounce, Duration rescanInterval) {
        super("xds-directory-source", translator, debounce);
        this.root = Objects.requireNonNull(root, "root").toAbsolutePath().normalize();
        this.debounce = debounce;
        this.rescanInterval = rescanInterval;
    }

    public DirectoryMeshSource(Path root, MeshTranslator translator) {
        this(root, translator, Duration.ofMillis(100), Duration.ofSeconds(2));
    }

    @Override
    public void start() {
        try {
            watchService = FileSystems.getDefault().newWatchService();
            watcher = Thread.ofPlatform().daemon().name("xds-directory-watch").start(this::watchLoop);
        } catch (IOException e) {
            log.warnf("cannot watch %s (%s); polling every %s", root, e.getMessage(), rescanInterval);
        }
        log.infof("reading the mesh from %s", root);
        executor.execute(this::rescan);
        long every = Math.max(100, rescanInterval.toMillis());
        executor.scheduleWithFixedDelay(this::rescan, every, every, TimeUnit.MILLISECONDS);
    }

    @Override
    protected boolean sourceSynced() {
        return scannedOnce;
    }

    private void watchLoop() {
        try {
            while (!isClosed()) {
                WatchKey key = watchService.take();
                key.pollEvents();
                if (!key.reset()) {
                    synchronized (watchedDirs) {
                        watchedDirs.remove((Path) key.watchable());
                    }
                }
                scheduleRescan();
            }
        } catch (InterruptedException | ClosedWatchServiceException e) {
            // closing
        }
    }

    private void scheduleRescan() {
        if (isClosed() || !rescanPending.compareAndSet(false, true)) {
            return;
        }
        try {
            executor.schedule(this::rescan, debounce.toMillis(), TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            rescanPending.set(false);
        }
    }

    /** Walks the tree; parses new and changed files; recomputes if anything changed. Model thread. */
    private void rescan() {
        rescanPending.set(false);
        if (isClosed()) {
            return;
        }
        boolean changed = !scannedOnce;
        Map<Path, BasicFileAttributes> seen = new TreeMap<>();
        boolean missing = !Files.isDirectory(root);
        if (missing != rootMissing) {
            rootMissing = missing;
            changed = true;
            if (missing) {
                log.warnf("mesh directory %s does not exist (yet)", root);
            }
        }
        if (!missing) {
            List<Path> dirs = new ArrayList<>();
            try (Stream<Path> walk = Files.walk(root)) {
                walk.filter(p -> !YamlDirectory.hidden(root, p)).forEach(p -> {
                    if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
                        dirs.add(p);
                    } else if (YamlDirectory.isYaml(p) && Files.isRegularFile(p)) {
                        try {
                            seen.put(p, Files.readAttributes(p, BasicFileAttributes.class));
                        } catch (IOException e) {
                            // vanished between listing and reading: seen as deleted
                        }
                    }
                });
            } catch (IOException | java.io.UncheckedIOException e) {
                log.warnf("cannot list %s: %s", root, e.getMessage());
                return; // keep everything as it is
            }
            register(dirs);
        }
        if (files.keySet().retainAll(seen.keySet())) {
            changed = true;
        }
        for (Map.Entry<Path, BasicFileAttributes> e : seen.entrySet()) {
            long modified = e.getValue().lastModifiedTime().toMillis();
            long size = e.getValue().size();
            FileState old = files.get(e.getKey());
            if (old != null && old.modified() == modified && old.size() == size) {
                continue;
            }
            files.put(e.getKey(), read(e.getKey(), modified, size, old));
            changed = true;
        }
        scannedOnce = true;
        if (changed) {
            recompute();
        }
    }

    private void register(List<Path> dirs) {
        WatchService ws = watchService;
        if (ws == null) {
            return;
        }
        for (Path d : dirs) {
            synchronized (watchedDirs) {
                if (watchedDirs.contains(d)) {
                    continue;
                }
                try {
                    d.register(ws, StandardWatchEventKinds.ENTRY_CREATE, StandardWatchEventKinds.ENTRY_DELETE,
                            StandardWatchEventKinds.ENTRY_MODIFY);
                    watchedDirs.add(d);
                } catch (IOException | ClosedWatchServiceException e) {
                    log.debugf("cannot watch %s: %s", d, e.getMessage());
                }
            }
        }
    }

    private FileState read(Path file, long modified, long size, FileState old) {
        String name = display(file);
        try {
            String text = Files.readString(file);
            List<HasMetadata> objects = KubeYaml.parse(text,
                    kind -> log.debugf("%s: ignoring %s (not used by the mesh)", name, kind));
            if (old != null && old.error() != null) {
                log.infof("%s: readable again", name);
            }
            log.debugf("%s: %d objects", name, objects.size());
            return new FileState(modified, size, List.copyOf(objects), null);
        } catch (KubeYaml.Invalid | IOException | RuntimeException e) {
            String reason = e instanceof IOException ? "cannot be read: " + e.getMessage() : e.getMessage();
            List<HasMetadata> keep = old == null ? List.of() : old.objects();
            return new FileState(modified, size, keep, reason + (old == null || old.objects().isEmpty() ? ""
                    : " (keeping its last good content)"));
        }
    }

    private String display(Path file) {
        return root.relativize(file).toString();
    }

    @Override
    protected MeshInput collect() {
        MeshInput.Builder b = MeshInput.builder();
        for (FileState f : files.values()) {
            f.objects().forEach(b::add);
        }
        return b.build();
    }

    @Override
    protected List<Problem> sourceProblems() {
        List<Problem> out = new ArrayList<>();
        if (rootMissing) {
            out.add(new Problem(root.toString(), "directory does not exist"));
        }
        files.forEach((path, f) -> {
            if (f.error() != null) {
                out.add(new Problem(display(path), f.error()));
            }
        });
        return out;
    }

    @Override
    public void close() {
        super.close();
        WatchService ws = watchService;
        if (ws != null) {
            try {
                ws.close();
            } catch (IOException e) {
                // closing anyway
            }
        }
        if (watcher != null) {
            watcher.interrupt();
        }
    }
}
