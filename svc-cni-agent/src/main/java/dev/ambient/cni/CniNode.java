package dev.ambient.cni;

import dev.ambient.cni.enrol.Enroller;
import dev.ambient.cni.metrics.CniMetrics;
import dev.ambient.cni.netns.PodNetnsLocator;
import dev.ambient.cni.plugin.CniDeadlines;
import dev.ambient.cni.plugin.PluginServer;
import dev.ambient.cni.pods.PodSource;
import dev.ambient.cni.redirect.HostProbeSnat;
import dev.ambient.cni.redirect.InPodRedirection;
import dev.ambient.cni.redirect.NetnsCommand;
import dev.ambient.cni.redirect.RedirectSettings;
import dev.ambient.cni.zds.ZdsServer;
import dev.ambient.zds.AllowedPeers;
import io.micrometer.core.instrument.MeterRegistry;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * One node agent, assembled in plain Java (the Quarkus bean {@link NodeAgent} only reads the
 * configuration), so tests can run agents, restart them and point them at their own sockets.
 */
public final class CniNode implements AutoCloseable {

    /** Everything an agent needs to know; see the cni.* keys in README.md. */
    /**
     * @param probeSnatNetns the node's network namespace, where probes to enrolled pods are SNATed
     *     to the probe source; null: not done by the agent
     * @param zdsPeers the uids a ztunnel may connect to the ZDS socket as
     */
    public record Settings(String node, Path zdsSocket, Path pluginSocket, Duration ztunnelWait, Duration ackTimeout,
            Duration lookupTimeout, Duration resyncInterval, List<Path> netnsDirs, Path procDir, RedirectSettings redirect,
            Path probeSnatNetns, AllowedPeers zdsPeers) {

        /** Sockets in {@code socketDir}; no probe SNAT (tests must not touch the machine's own nat table). */
        public static Settings of(String node, Path socketDir) {
            return new Settings(node, socketDir.resolve("ztunnel.sock"), socketDir.resolve("cni-plugin.sock"),
                    Duration.ofSeconds(30), Duration.ofSeconds(10), Duration.ofSeconds(5), Duration.ofSeconds(5),
                    List.of(Path.of("/var/run/netns")), Path.of("/proc"), RedirectSettings.defaults(), null,
                    AllowedPeers.rootOnly());
        }

        /** The chain of deadlines around a CNI ADD these settings make; refuses ones that disagree. */
        public CniDeadlines deadlines() {
            return new CniDeadlines(lookupTimeout, ztunnelWait, ackTimeout);
        }

        public Settings withZtunnelWait(Duration d) {
            return new Settings(node, zdsSocket, pluginSocket, d, ackTimeout, lookupTimeout, resyncInterval, netnsDirs, procDir,
                    redirect, probeSnatNetns, zdsPeers);
        }

        public Settings withResyncInterval(Duration d) {
            return new Settings(node, zdsSocket, pluginSocket, ztunnelWait, ackTimeout, lookupTimeout, d, netnsDirs, procDir,
                    redirect, probeSnatNetns, zdsPeers);
        }

        public Settings withProbeSnatIn(Path hostNetns) {
            return new Settings(node, zdsSocket, pluginSocket, ztunnelWait, ackTimeout, lookupTimeout, resyncInterval,
                    netnsDirs, procDir, redirect, hostNetns, zdsPeers);
        }
    }

    private final Settings settings;
    private final ZdsServer zds;
    private final Enroller enroller;
    private final PluginServer plugin;

    public CniNode(Settings s, PodSource source, MeterRegistry registry) {
        this.settings = s;
        CniMetrics metrics = new CniMetrics(registry);
        this.zds = new ZdsServer(s.zdsSocket(), s.ackTimeout(), metrics, s.zdsPeers());
        NetnsCommand command = new NetnsCommand(Duration.ofSeconds(20));
        InPodRedirection redirection = new InPodRedirection(s.redirect(), command);
        HostProbeSnat probeSnat = s.probeSnatNetns() == null ? null
                : new HostProbeSnat(s.probeSnatNetns(), s.redirect().probeSource(),
                        s.redirect().probeSourceIpv6(), command);
        this.enroller = new Enroller(s.node(), source, redirection, probeSnat,
                new PodNetnsLocator(s.netnsDirs(), s.procDir()), zds, metrics, s.ztunnelWait(), s.resyncInterval());
        this.plugin = new PluginServer(s.pluginSocket(), enroller, metrics, s.deadlines().agentAnswer());
    }

    public CniNode start() throws IOException {
        zds.start();
        plugin.start();
        enroller.start();
        return this;
    }

    public Settings settings() {
        return settings;
    }

    public Enroller enroller() {
        return enroller;
    }

    public ZdsServer zds() {
        return zds;
    }

    @Override
    public void close() {
        plugin.close();
        enroller.close();
        zds.close();
    }
}
