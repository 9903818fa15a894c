package dev.ambient.cni.pods;

import dev.ambient.yaml.YamlDirectory;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Pod;
import java.io.IOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchService;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.jboss.logging.Logger;

/**
 * Pods and namespaces from a directory of Kubernetes-style YAML (recursively {@code *.yaml} and
 * {@code *.yml}, names starting with "." skipped), as svc-xds reads the mesh in a box. A file that
 * cannot be read is reported once (name and reason) and its last good content stays in force.
 * Changes are seen through a WatchService, with a rescan every {@code rescanInterval} as a safety net.
 */
public final class DirectoryPodSource implements PodSource {

    private static final Logger LOG = Logger.getLogger(DirectoryPodSource.class);

    private record FileState(long modified, long size, List<HasMetadata> objects, String error) {
    }

    private final Path root;
    private final Duration rescanInterval;
    private final Map<Path, FileState> files = new TreeMap<>();
    private final ScheduledExecutorService executor =
            Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().name("cni-directory").factory());
    private volatile Map<String, Namespace> namespaces = Map.of();
    private volatile List<Pod> pods = List.of();
    private volatile boolean synced;
    private WatchService watch;
    private Runnable onChange = () -> { };

    public DirectoryPodSource(Path root, Duration rescanInterval) {
        this.root = Objects.requireNonNull(root).toAbsolutePath().normalize();
        this.rescanInterval = rescanInterval;
    }

    @Override
    public void start(Runnable onChange) {
        this.onChange = onChange;
        LOG.infof("reading pods and namespaces from %s", root);
        try {
            watch = FileSystems.getDefault().newWatchService();
            Thread.ofPlatform().daemon().name("cni-directory-watch").start(this::watchLoop);
        } catch (IOException e) {
            LOG.warnf("cannot watch %s (%s); rescanning every %s", root, e.getMessage(), rescanInterval);
        }
        long every = Math.max(100, rescanInterval.toMillis());
        executor.scheduleWithFixedDelay(this::rescan, 0, every, TimeUnit.MILLISECONDS);
    }

    private void watchLoop() {
        try {
            while (true) {
                var key = watch.take();
                key.pollEvents();
                key.reset();
                executor.schedule(this::rescan, 50, TimeUnit.MILLISECONDS);
            }
        } catch (InterruptedException | ClosedWatchServiceException e) {
            // closing
        }
    }

    /** The problems of the last scan: file and reason. */
    public synchronized Map<Path, String> problems() {
        Map<Path, String> out = new TreeMap<>();
        files.forEach((p, f) -> {
            if (f.error() != null) {
                out.put(p, f.error());
            }
        });
        return out;
    }

    private synchronized void rescan() {
        try {
            Map<Path, BasicFileAttributes> seen = new TreeMap<>();
            if (Files.isDirectory(root)) {
                try (Stream<Path> walk = Files.walk(root)) {
                    walk.filter(p -> !YamlDirectory.hidden(root, p)).forEach(p -> {
                        try {
                            if (Files.isDirectory(p) && watch != null) {
                                p.register(watch, StandardWatchEventKinds.ENTRY_CREATE,
                                        StandardWatchEventKinds.ENTRY_DELETE, StandardWatchEventKinds.ENTRY_MODIFY);
                            } else if (Files.isRegularFile(p) && YamlDirectory.isYaml(p)) {
                                seen.put(p, Files.readAttributes(p, BasicFileAttributes.class));
                            }
                        } catch (IOException | ClosedWatchServiceException e) {
                            // vanished while walking: gone at the next scan
                        }
                    });
                }
            } else if (!synced) {
                LOG.warnf("directory %s does not exist (yet)", root);
            }
            boolean changed = !synced | files.keySet().retainAll(seen.keySet());
            for (var e : seen.entrySet()) {
                long modified = e.getValue().lastModifiedTime().toMillis();
                long size = e.getValue().size();
                FileState old = files.get(e.getKey());
                if (old != null && old.modified() == modified && old.size() == size) {
                    continue;
                }
                files.put(e.getKey(), read(e.getKey(), modified, size, old));
                changed = true;
            }
            if (changed) {
                publish();
                LOG.infof("%s: %d pods, %d namespaces in %d files", root, pods.size(), namespaces.size(), files.size());
                synced = true;
                onChange.run();
            }
        } catch (IOException | RuntimeException | LinkageError e) {
            LOG.warnf(e, "cannot scan %s: %s (keeping what was read before)", root, e.getMessage());
        }
    }

    private FileState read(Path file, long modified, long size, FileState old) {
        String name = root.relativize(file).toString();
        try {
            List<HasMetadata> objects = PodYaml.parse(Files.readString(file));
            if (old != null && old.error() != null) {
                LOG.infof("%s: readable again", name);
            }
            return new FileState(modified, size, List.copyOf(objects), null);
        } catch (PodYaml.Invalid | IOException e) {
            List<HasMetadata> keep = old == null ? List.of() : old.objects();
            LOG.errorf("%s: %s%s", name, e.getMessage(), keep.isEmpty() ? "" : " (keeping its last good content)");
            return new FileState(modified, size, keep, e.getMessage());
        }
    }

    private void publish() {
        Map<String, Namespace> ns = new TreeMap<>();
        List<Pod> ps = new ArrayList<>();
        for (FileState f : files.values()) {
            for (HasMetadata o : f.objects()) {
                if (o instanceof Namespace n) {
                    ns.put(n.getMetadata().getName(), n);
                } else if (o instanceof Pod p) {
                    ps.add(p);
                }
            }
        }
        namespaces = Map.copyOf(ns);
        pods = List.copyOf(ps);
    }

    @Override
    public boolean synced() {
        return synced;
    }

    @Override
    public List<Pod> podsOn(String node) {
        return pods.stream().filter(p -> p.getSpec() != null && node.equals(p.getSpec().getNodeName())).toList();
    }

    @Override
    public Optional<Namespace> namespace(String name) {
        return Optional.ofNullable(namespaces.get(name));
    }

    @Override
    public Optional<Pod> pod(String namespace, String name) {
        return pods.stream().filter(p -> namespace.equals(p.getMetadata().getNamespace())
                && name.equals(p.getMetadata().getName())).findFirst();
    }

    @Override
    public void close() {
        executor.shutdownNow();
        if (watch != null) {
            try {
                watch.close();
            } catch (IOException e) {
                // closing anyway
            }
        }
    }
}
