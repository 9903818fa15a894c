package dev.ambient.cni;

import dev.ambient.cni.config.CniConfig;
import dev.ambient.cni.plugin.PluginInstaller;
import dev.ambient.cni.pods.DirectoryPodSource;
import dev.ambient.cni.pods.KubernetesPodSource;
import dev.ambient.cni.pods.PodSource;
import dev.ambient.cni.redirect.RedirectSettings;
import dev.ambient.zds.AllowedPeers;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Instance;
import jakarta.inject.Inject;
import java.io.IOException;
import java.time.Duration;
import org.jboss.logging.Logger;

/** Starts the node agent from the cni.* configuration when the application starts. */
@ApplicationScoped
public class NodeAgent {

    private static final Logger LOG = Logger.getLogger(NodeAgent.class);

    @Inject
    CniConfig config;

    @Inject
    MeterRegistry registry;

    @Inject
    Instance<KubernetesClient> kubernetes;

    private volatile CniNode node;
    private PluginInstaller installer;

    void onStart(@Observes StartupEvent ev) throws IOException {
        if (!config.enabled()) {
            LOG.info("cni.enabled=false: not enrolling pods");
            return;
        }
        PodSource source = switch (config.source()) {
            case "kubernetes" -> new KubernetesPodSource(kubernetes.get(), config.nodeName(),
                    config.kubernetesLookupTimeout());
            case "directory" -> new DirectoryPodSource(config.directory().orElseThrow(() ->
                    new IllegalArgumentException("cni.source=directory needs cni.directory")), Duration.ofSeconds(2));
            default -> throw new IllegalArgumentException("cni.source must be kubernetes or directory, not "
                    + config.source());
        };
        CniConfig.Redirect r = config.redirect();
        CniNode.Settings s = new CniNode.Settings(config.nodeName(), config.zdsSocket(), config.pluginSocket(),
                config.ztunnelWait(), config.ackTimeout(), config.kubernetesLookupTimeout(), config.resyncInterval(),
                config.netnsDirs(), config.procDir(), new RedirectSettings(r.outboundPort(), r.inboundPort(), r.hbonePort(), r.mark(),
                        r.probeSource(), r.probeSourceIpv6(), r.dnsPort(), r.replyMark(), r.replyMarkMask(), r.replyTable()),
                // The agent runs on the host network: its own namespace is the node's.
                r.probeSnat() ? java.nio.file.Path.of("/proc/" + ProcessHandle.current().pid() + "/ns/net") : null,
                AllowedPeers.of(config.zdsAllowedUids()));
        s.deadlines().requireNested();
        node = new CniNode(s, source, registry).start();
        LOG.infof("cni-agent for node %s: pods from %s, ZDS on %s, plugin socket %s", config.nodeName(),
                config.source(), config.zdsSocket(), config.pluginSocket());
        if (config.install().enabled()) {
            CniConfig.Install i = config.install();
            installer = new PluginInstaller(i.pluginSource(), i.binDir(), i.confDir(), config.pluginSocket(),
                    s.deadlines().pluginTimeoutSeconds());
            installer.install();
        }
    }

    void onStop(@Observes ShutdownEvent ev) {
        if (installer != null && config.install().removeOnShutdown()) {
            installer.uninstall();
        }
        if (node != null) {
            node.close();
        }
    }

    /** The started node, or null before (or without) it. */
    public CniNode node() {
        return node;
    }

    public boolean enabled() {
        return config.enabled();
    }
}
