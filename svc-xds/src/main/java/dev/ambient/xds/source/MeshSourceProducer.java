package dev.ambient.xds.source;

import dev.ambient.xds.model.MeshModel;
import dev.ambient.xds.translate.MeshTranslator;
import dev.ambient.xds.translate.TranslatorConfig;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.runtime.Startup;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Disposes;
import jakarta.enterprise.inject.Instance;
import jakarta.enterprise.inject.Produces;
import jakarta.enterprise.inject.Typed;
import jakarta.inject.Inject;
import jakarta.inject.Singleton;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/**
 * Chooses where the mesh comes from: {@code xds.source=kubernetes} (the default; the API server
 * the Kubernetes client is configured for) or {@code xds.source=directory} with
 * {@code xds.directory=/path} (the mesh in a box). The source starts with the application and
 * never waits for the API server.
 */
@ApplicationScoped
public class MeshSourceProducer {

    private static final Logger LOG = Logger.getLogger(MeshSourceProducer.class);

    @ConfigProperty(name = "xds.source", defaultValue = "kubernetes")
    String source;

    @ConfigProperty(name = "xds.directory")
    Optional<String> directory;

    @ConfigProperty(name = "xds.cluster-id", defaultValue = "Kubernetes")
    String clusterId;

    @ConfigProperty(name = "xds.trust-domain", defaultValue = "cluster.local")
    String trustDomain;

    /** Shared with the waypoint controller. */
    @ConfigProperty(name = "xds.waypoint.cluster-domain", defaultValue = "cluster.local")
    String clusterDomain;

    /** Shared with the waypoint controller: the mesh root namespace. */
    @ConfigProperty(name = "xds.system-namespace", defaultValue = "istio-system")
    String rootNamespace;

    /** Shared with the waypoint controller. */
    @ConfigProperty(name = "xds.waypoint.gateway-class", defaultValue = "istio-waypoint")
    String waypointClass;

    @ConfigProperty(name = "xds.debounce", defaultValue = "100ms")
    Duration debounce;

    @Inject
    Instance<KubernetesClient> kubernetes;

    TranslatorConfig translatorConfig() {
        return new TranslatorConfig(clusterId, trustDomain, clusterDomain, rootNamespace, waypointClass);
    }

    @Produces
    @Singleton
    @Startup
    @Typed({MeshModel.class, MeshSource.class})
    MeshSource meshSource() {
        MeshTranslator translator = new MeshTranslator(translatorConfig());
        MeshSource s = switch (source) {
            case "kubernetes" -> new KubernetesMeshSource(kubernetes.get(), translator, debounce, Duration.ofSeconds(60));
            case "directory" -> {
                String dir = directory.filter(d -> !d.isBlank()).orElseThrow(() -> new IllegalStateException(
                        "xds.source=directory needs xds.directory=<path of the YAML directory>"));
                yield new DirectoryMeshSource(Path.of(dir), translator, debounce, Duration.ofSeconds(2));
            }
            default -> throw new IllegalStateException("xds.source must be 'kubernetes' or 'directory', not '"
                    + source + "'");
        };
        LOG.infof("mesh source: %s", source);
        s.start();
        return s;
    }

    void close(@Disposes MeshSource s) {
        s.close();
    }
}
