package dev.ambient.ztunnel.config;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;

/** Every ztunnel setting; each key is documented once, in svc-ztunnel/README.md. */
@ConfigMapping(prefix = "ztunnel")
public interface ZtunnelConfig {

    /** Kubernetes node this ztunnel serves; only workloads whose node matches are proxied here. */
    @WithDefault("node-a")
    String nodeName();

    /** Address of this node: the SOCKS5 listener binds here, so several ztunnels share one machine. */
    @WithDefault("127.0.0.1")
    String nodeIp();

    @WithDefault("cluster.local")
    String trustDomain();

    /** Standalone mode: the YAML file of workloads, services and policies, reloaded on change. */
    Optional<Path> localConfig();

    /** The control plane (svc-xds) as host:port; its discovery stream replaces the local file. */
    Optional<String> xdsAddress();

    /** The DNS name svc-xds's certificate must carry; default: the host of xds-address (set it when dialling an IP). */
    Optional<String> xdsServerName();

    Ports ports();

    Identity identity();

    DataPlane dataplane();

    Pool pool();

    Inpod inpod();

    Dns dns();

    Endpoints endpoints();

    /**
     * Istio's outboundTrafficPolicy: ALLOW_ANY passes connections to unknown destinations through as
     * plain TCP; REGISTRY_ONLY refuses them (only known workloads, services and ServiceEntries).
     */
    @WithDefault("ALLOW_ANY")
    String outboundTrafficPolicy();

    interface Ports {
        @WithDefault("15008")
        int hbone();

        /** Outbound capture: connections redirected by REDIRECT rules; 0 disables it. */
        @WithDefault("15001")
        int outboundCapture();

        /** Inbound plaintext capture: non-mesh clients redirected to a local workload; 0 disables it. */
        @WithDefault("15006")
        int inboundPlaintext();

        /** Address the 15001/15006 capture listeners bind (REDIRECT sends to the loopback). */
        @WithDefault("127.0.0.1")
        String captureAddress();

        /** SOCKS5 on the node IP; 0 disables it. */
        @WithDefault("15080")
        int socks5();

        /** Admin (config dump), bound to localhost only. */
        @WithDefault("15000")
        int admin();

        /** The DNS proxy, UDP and TCP (in-pod on 127.0.0.1 and ::1 in each pod; shared mode beside 15001); 0 disables. */
        @WithDefault("15053")
        int dns();
    }

    interface Identity {
        /** local: sign with a root kept in ca-dir (standalone); ca: ask svc-ca at ca-address. */
        @WithDefault("local")
        String source();

        /** Root key and certificate for the local source; created on first start. */
        @WithDefault("/var/lib/ztunnel/ca")
        Path caDir();

        @WithDefault("24h")
        Duration certificateLifetime();

        /** svc-ca's gRPC address (host:port), for source=ca. */
        @WithDefault("ca.istio-system.svc:15012")
        String caAddress();

        /** The DNS name svc-ca's certificate must carry; default: the host of ca-address (set it when dialling an IP). */
        Optional<String> caServerName();

        /** This ztunnel's service-account token (audience istio-ca), sent to svc-ca and svc-xds; re-read on every call. */
        @WithDefault("/var/run/secrets/tokens/ambient-ca-token")
        Path tokenFile();

        /** The mesh root (the istio-ca-root-cert ConfigMap, mounted): how svc-ca and svc-xds are verified. */
        @WithDefault("/var/run/secrets/istio/root-cert.pem")
        Path rootCertFile();
    }

    interface DataPlane {
        /** Event-loop threads that move bytes; default: one per core. */
        OptionalInt threads();

        @WithDefault("4194304")
        int streamWindow();

        @WithDefault("16777216")
        int connectionWindow();

        @WithDefault("1048576")
        int maxFrameSize();

        /** Streams a peer may open on one HBONE connection to us. */
        @WithDefault("100")
        int maxStreamsPerConnection();

        /** What one peer connection to our HBONE listeners may cost (timeouts, rapid-reset budget, ...). */
        dev.ambient.hbone.HboneLimitsConfig limits();

        /** SO_MARK on every socket the ztunnel opens, exempted by the capture rules; 0 = none. */
        @WithDefault("1337")
        int socketMark();

        /** Keep the client's source IP when dialling local workloads (needs a bindable address). */
        @WithDefault("true")
        boolean preserveSourceIp();
    }

    interface Pool {
        @WithDefault("5s")
        Duration connectTimeout();

        /** A pooled HBONE connection with no stream for this long is closed. */
        @WithDefault("60s")
        Duration idleTimeout();
    }

    /** The DNS proxy on ports.dns (Istio's DNS capture). */
    interface Dns {
        /** Answer for the mesh's names and forward the rest; off: no DNS listener. */
        @WithDefault("true")
        boolean enabled();

        /** Upstream resolvers (ip or ip:port); default: the nameservers of resolv-conf. */
        Optional<java.util.List<String>> upstream();

        /** Where the default upstream resolvers are read from. */
        @WithDefault("/etc/resolv.conf")
        Path resolvConf();

        /** Each upstream resolver gets this long to answer before the next is asked (then SERVFAIL). */
        @WithDefault("2s")
        Duration upstreamTimeout();

        /** The cluster's DNS domain (name.ns.svc.DOMAIN). */
        @WithDefault("cluster.local")
        String clusterDomain();

        /** TTL of the answers the proxy gives for the mesh's names. */
        @WithDefault("30s")
        Duration localTtl();

        @WithDefault("4096")
        int cacheMaxEntries();

        @WithDefault("5m")
        Duration cacheMaxTtl();

        @WithDefault("30s")
        Duration cacheMaxNegativeTtl();

        /** Per pod (shared mode: per source address). */
        @WithDefault("200")
        double queriesPerSecond();

        @WithDefault("400")
        int queryBurst();

        @WithDefault("512")
        int maxOutstanding();

        @WithDefault("64")
        int maxOutstandingPerPod();

        @WithDefault("16")
        int maxTcpConnections();

        @WithDefault("10s")
        Duration tcpIdleTimeout();
    }

    /** In-pod mode: the node agent hands over pod network namespaces over ZDS. */
    interface Inpod {
        /**
         * Serve pods enrolled over ZDS, with 15001/15006/15008 listening inside each pod's network
         * namespace; the shared-mode listeners in the ztunnel's own namespace are not bound.
         */
        @WithDefault("false")
        boolean enabled();

        /** The node agent's ZDS socket (unix SOCK_SEQPACKET), shared through a host path. */
        @WithDefault("/var/run/ztunnel/ztunnel.sock")
        Path zdsSocket();

        /**
         * The uids the node agent may run as: a server at the ZDS socket of any other uid (SO_PEERCRED)
         * is left before anything is said or read, and tried again later.
         */
        @WithDefault("0")
        List<Long> zdsAllowedUids();

        /** First wait before reconnecting to the agent; doubles up to the maximum. */
        @WithDefault("100ms")
        Duration reconnectInitialBackoff();

        @WithDefault("5s")
        Duration reconnectMaxBackoff();

        /**
         * After a Del, how long open connections of the pod may finish before they are closed; also
         * the hand-over deadline: how long a replaced ztunnel drains (see README, Hand-over).
         */
        @WithDefault("30s")
        Duration drainTimeout();

        /**
         * Once a newer ztunnel replaced this one and its connections drained: exit (a plain process,
         * the mesh in a box), or stay idle until stopped (false: a DaemonSet pod, which the rolling
         * update deletes; had it exited, the kubelet would restart it).
         */
        @WithDefault("false")
        boolean exitWhenReplaced();

        /** Threads that enter pod namespaces to create sockets (never the event loops). */
        @WithDefault("2")
        int socketThreads();

        /**
         * Socket creations that may wait for a socket thread; beyond it a connection is shed (refused,
         * logged, counted) rather than queued without bound.
         */
        @WithDefault("1024")
        int socketQueue();
    }

    /**
     * The probe (15021) and metrics (15020) listeners: every pod can reach them without credentials,
     * so what connections may hold there is bounded (see README, Ports).
     */
    interface Endpoints {
        /** Connections one source address may hold per listener; beyond it closed at accept. */
        @WithDefault("16")
        int maxConnectionsPerSource();

        /** Connections all sources together may hold per listener. */
        @WithDefault("256")
        int maxConnections();

        /** An idle connection is closed after this; longer than Prometheus's scrape interval keeps its connection. */
        @WithDefault("2m")
        Duration idleTimeout();

        /** A connection must have sent its first request's headers this soon after accept. */
        @WithDefault("10s")
        Duration firstRequestTimeout();
    }
}
