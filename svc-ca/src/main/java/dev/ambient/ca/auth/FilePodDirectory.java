package dev.ambient.ca.auth;

import io.fabric8.kubernetes.api.model.KubernetesList;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.Stream;
import org.jboss.logging.Logger;

/**
 * Pods from Kubernetes-style YAML files under a directory (standalone mode, the mesh in a box):
 * the directory is scanned on every lookup, so pods added to it count at once. Without a
 * directory no pod is known, and impersonation is refused.
 */
public final class FilePodDirectory implements PodDirectory {

    private static final Logger LOG = Logger.getLogger(FilePodDirectory.class);

    private final Optional<Path> dir;

    public FilePodDirectory(Optional<Path> dir) {
        this.dir = dir;
    }

    @Override
    public Optional<PodPlacement> find(String namespace, String name) {
        if (dir.isEmpty()) {
            return Optional.empty();
        }
        try (Stream<Path> files = Files.walk(dir.get())) {
            for (Path file : files.filter(f -> f.toString().endsWith(".yaml") || f.toString().endsWith(".yml")).toList()) {
                for (Pod pod : pods(file)) {
                    String podNamespace = Objects.requireNonNullElse(pod.getMetadata().getNamespace(), "default");
                    if (podNamespace.equals(namespace) && name.equals(pod.getMetadata().getName())) {
                        pod.getMetadata().setNamespace(podNamespace);
                        return Optional.of(KubernetesPodDirectory.placement(pod));
                    }
                }
            }
        } catch (IOException e) {
            LOG.warnf("cannot scan pods directory %s: %s", dir.get(), e.getMessage());
        }
        return Optional.empty();
    }

    private static List<Pod> pods(Path file) {
        List<Pod> pods = new ArrayList<>();
        try (InputStream in = Files.newInputStream(file)) {
            collect(Serialization.unmarshal(in), pods);
        } catch (IOException | RuntimeException e) {
            LOG.debugf("skipping %s: %s", file, e.getMessage());
        }
        return pods;
    }

    private static void collect(Object parsed, List<Pod> pods) {
        switch (parsed) {
            case Pod pod when pod.getMetadata() != null && pod.getMetadata().getName() != null -> pods.add(pod);
            case KubernetesList list -> list.getItems().forEach(item -> collect(item, pods));
            case Collection<?> many -> many.forEach(item -> collect(item, pods));
            case null, default -> { }
        }
    }
}
