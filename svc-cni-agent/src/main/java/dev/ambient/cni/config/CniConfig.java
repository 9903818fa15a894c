package dev.ambient.cni.config;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/** Every cni-agent setting; each key is documented once, in svc-cni-agent/README.md. */
@ConfigMapping(prefix = "cni")
public interface CniConfig {

    /** Off: the agent serves only health and metrics (the module's endpoint tests). */
    @WithDefault("true")
    boolean enabled();

    /** The node this agent serves; only pods scheduled here are enrolled. */
    @WithDefault("node-a")
    String nodeName();

    /** Where pods and namespaces come from: kubernetes (API watch) or directory (YAML files). */
    @WithDefault("kubernetes")
    String source();

    /** The YAML directory for source=directory (the mesh in a box's samples). */
    Optional<Path> directory();

    /** The ZDS socket the ztunnel connects to. */
    @WithDefault("/var/run/ztunnel/ztunnel.sock")
    Path zdsSocket();

    /**
     * The uids a process connecting to the ZDS socket may have (SO_PEERCRED): any other is closed at
     * accept, before it is handed a pod's network namespace or can replace the ztunnel.
     */
    @WithDefault("0")
    List<Long> zdsAllowedUids();

    /** The socket the CNI plugin asks (must match the plugin's agent_socket). */
    @WithDefault("/var/run/ambient/cni-plugin.sock")
    Path pluginSocket();

    /** How long a CNI ADD waits for a ztunnel to take the pod before failing. */
    @WithDefault("30s")
    Duration ztunnelWait();

    /**
     * How long a CNI ADD waits for the Kubernetes API when the agent's cache does not have its pod
     * yet (the lookup runs beside the enrol thread, never on it); then the ADD fails and is retried.
     */
    @WithDefault("5s")
    Duration kubernetesLookupTimeout();

    /** How long the ztunnel has to acknowledge one ZDS request before the connection is dropped. */
    @WithDefault("10s")
    Duration ackTimeout();

    /** How often everything is reconciled again (pods whose netns was not found yet, failures). */
    @WithDefault("5s")
    Duration resyncInterval();

    /** Where to look for network namespaces of running pods (besides /proc/PID/ns/net). */
    @WithDefault("/var/run/netns")
    List<Path> netnsDirs();

    @WithDefault("/proc")
    Path procDir();

    Redirect redirect();

    Install install();

    interface Redirect {
        @WithDefault("15001")
        int outboundPort();

        @WithDefault("15006")
        int inboundPort();

        @WithDefault("15008")
        int hbonePort();

        /** The mark of the ztunnel's own sockets (SO_MARK); exempt from capture. */
        @WithDefault("1337")
        int mark();

        /** Source address of kubelet probes to a pod's IPv4 addresses after the host's SNAT; exempt from capture. */
        @WithDefault("169.254.7.127")
        String probeSource();

        /** The same for probes to a pod's IPv6 addresses (Istio's IPv6 probe source). */
        @WithDefault("fd16:9254:7127:1337:ffff:ffff:ffff:ffff")
        String probeSourceIpv6();

        /** SNAT the node's own connections to enrolled pods (kubelet probes) to the probe source. */
        @WithDefault("true")
        boolean probeSnat();

        /** The ztunnel's DNS proxy port: the pod's DNS (UDP and TCP port 53) is redirected there; 0 = no DNS capture. */
        @WithDefault("15053")
        int dnsPort();

        /**
         * Connection mark (under {@code reply-mark-mask}) of the ztunnel's connections to the
         * application from the client's address; restored onto the application's replies.
         */
        @WithDefault("273")
        int replyMark();

        @WithDefault("4095")
        int replyMarkMask();

        /** Routing table the marked replies look up ({@code local default dev lo}). */
        @WithDefault("100")
        int replyTable();
    }

    interface Install {
        /** Copy the plugin into the node's CNI bin dir and chain it into the node's conflist. */
        @WithDefault("false")
        boolean enabled();

        /** Host CNI binary directory (mounted from the node). */
        @WithDefault("/host/opt/cni/bin")
        Path binDir();

        /** Host CNI configuration directory (mounted from the node). */
        @WithDefault("/host/etc/cni/net.d")
        Path confDir();

        /** Where the plugin's jar and launcher are in the agent's image. */
        @WithDefault("/opt/ambient/cni")
        Path pluginSource();

        /** Remove the plugin from the chain when the agent stops (uninstall); off on plain restarts. */
        @WithDefault("false")
        boolean removeOnShutdown();
    }
}
