package dev.ambient.waypoint.config;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/** Every waypoint setting; each key is documented once, in svc-waypoint/README.md. */
@ConfigMapping(prefix = "waypoint")
public interface WaypointConfig {

    /** The waypoint Gateway this process implements, "namespace/name" (env WAYPOINT_GATEWAY). */
    @WithDefault("default/waypoint")
    String gateway();

    /** Pod name, for the discovery node id and logs (env POD_NAME). */
    @WithDefault("waypoint-0")
    String podName();

    /** Node the pod runs on (env NODE_NAME), sent to svc-xds in the discovery node. */
    Optional<String> nodeName();

    /** The pod's IP (env POD_IP), sent to svc-xds in the discovery node's metadata. */
    Optional<String> podIp();

    /** Service account the waypoint runs as; its identity. Defaults to the Gateway's name, as the controller creates it. */
    Optional<String> serviceAccount();

    @WithDefault("cluster.local")
    String trustDomain();

    /** svc-xds host:port; the delta discovery stream is the configuration. */
    Optional<String> xdsAddress();

    /** The DNS name svc-xds's certificate must carry; default: the host of xds-address (set it when dialling an IP). */
    Optional<String> xdsServerName();

    Listen listen();

    Identity identity();

    Upstream upstream();

    Http http();

    /** How long in-flight requests may take to finish after SIGTERM. */
    @WithDefault("20s")
    Duration drainTimeout();

    /**
     * After SIGTERM the waypoint keeps accepting for at least this long (not ready, GOAWAY sent),
     * so clients that picked it before its endpoint was removed are still served.
     */
    @WithDefault("5s")
    Duration drainMinimum();

    /**
     * A TCP tunnel (a port declared TCP, or sniffed as TCP) moving no byte either way for this long
     * is closed (Envoy's tcp_proxy idle_timeout, 1h); 0 for never.
     */
    @WithDefault("1h")
    Duration tcpIdleTimeout();

    /** RequestAuthentication (JWT). */
    Authn authn();

    interface Authn {
        /** How often every remote JWKS is fetched again (Istio's default, 20 minutes). */
        @WithDefault("20m")
        Duration jwksRefreshInterval();

        /** A token with a key id the set lacks fetches the set again at most this often (per set). */
        @WithDefault("30s")
        Duration jwksMinRefetchInterval();

        /** A JWKS fetch that has not completed in this time fails (the last good keys are kept). */
        @WithDefault("5s")
        Duration jwksFetchTimeout();

        /** A JWKS document larger than this is refused. */
        @WithDefault("65536")
        int maxJwksBytes();

        /** A token longer than this is refused without being decoded. */
        @WithDefault("8192")
        int maxTokenBytes();

        /** Tolerance on exp and nbf (Istio's 60 s). */
        @WithDefault("60s")
        Duration clockSkew();

        /**
         * Verified tokens kept so that a repeated token is not verified again (while its rule, its
         * issuer's keys, exp and nbf still hold); 0 keeps none. Each costs about twice its size.
         */
        @WithDefault("256")
        int verifiedTokenCacheSize();

        /**
         * Tokens of one mesh peer that may fail their signature check per
         * {@link #failedSignaturesWindow()}; beyond, its tokens not in the verified-token cache are
         * refused unverified until the window ends. 0: no bound.
         */
        @WithDefault("100")
        int failedSignaturesPerPeer();

        @WithDefault("10s")
        Duration failedSignaturesWindow();
    }

    interface Listen {
        /** Address of the HBONE listener. */
        @WithDefault("0.0.0.0")
        String address();

        @WithDefault("15008")
        int hbonePort();

        /** Data-plane event loops; default: the number of cores. */
        Optional<Integer> threads();

        /** Streams a peer may open on one HBONE connection to us. */
        @WithDefault("100")
        int maxStreamsPerConnection();

        /** What one peer connection to the HBONE listener may cost (timeouts, rapid-reset budget, ...). */
        dev.ambient.hbone.HboneLimitsConfig limits();
    }

    interface Identity {
        /** "local" (a root in ca-dir, standalone) or "ca" (svc-ca over gRPC). */
        @WithDefault("local")
        String source();

        @WithDefault("/var/lib/waypoint/ca")
        Path caDir();

        @WithDefault("ca.istio-system.svc:15012")
        String caAddress();

        /** The DNS name svc-ca's certificate must carry; default: the host of ca-address. */
        Optional<String> caServerName();

        /** The waypoint's service-account token (audience istio-ca), sent to svc-ca and svc-xds; re-read on every call. */
        @WithDefault("/var/run/secrets/tokens/ambient-ca-token")
        Path tokenFile();

        /** The mesh root (the istio-ca-root-cert ConfigMap, mounted): how svc-ca and svc-xds are verified. */
        @WithDefault("/var/run/secrets/istio/root-cert.pem")
        Path rootCertFile();

        @WithDefault("24h")
        Duration certificateLifetime();
    }

    interface Upstream {
        /** The HBONE port of the endpoints' ztunnels (on each endpoint's address). */
        @WithDefault("15008")
        int hbonePort();

        @WithDefault("5s")
        Duration connectTimeout();

        /** Pooled HBONE connections without streams close after this. */
        @WithDefault("60s")
        Duration idleTimeout();

        /** "round-robin" or "least-request". */
        @WithDefault("round-robin")
        String loadBalancing();

        /** Idle HTTP/1.1 upstream connections kept per endpoint. */
        @WithDefault("64")
        int maxIdlePerEndpoint();

        /**
         * Resolvers ("ip[:port]") asked for the names of endpoints outside the mesh (ServiceEntry
         * resolution DNS); default: the nameservers of the pod's /etc/resolv.conf.
         */
        Optional<java.util.List<String>> dnsServers();

        /** A name not resolved by then fails the attempt (503, connect failure). */
        @WithDefault("5s")
        Duration dnsTimeout();

        /**
         * Address blocks never dialled as a destination outside the mesh, on top of what always is
         * (this host, the mesh's own addresses, loopback, link-local, multicast). The default holds
         * the metadata services outside link-local (Alibaba Cloud's, AWS's over IPv6) and 0.0.0.0/8;
         * keep them when adding the cluster's pod, service and node ranges.
         */
        @WithDefault("0.0.0.0/8,100.100.100.200/32,fd00:ec2::254/128")
        java.util.List<String> deniedCidrs();

        /**
         * How often the files a DestinationRule's originated TLS is made of (caCertificates,
         * clientCertificate, privateKey) are checked for changes, off the event loops.
         */
        @WithDefault("5s")
        Duration tlsFilesCheckInterval();
    }

    /** AuthorizationPolicy action CUSTOM: calls to the mesh configuration's ext_authz providers. */
    ExtAuthz extAuthz();

    interface ExtAuthz {
        /** Checks in flight per provider; beyond, a check fails at once (then the provider's failOpen / statusOnError). */
        @WithDefault("1000")
        int maxInFlight();

        /** The most bytes of an authorizer's answer read (a deny's body, a gRPC message); more fails the check. */
        @WithDefault("65536")
        int maxResponseBytes();

        /**
         * Connections the loopback bridge to mesh authorizers carries at once (each one HBONE
         * stream); beyond, a new one is closed at once and its check fails.
         */
        @WithDefault("1024")
        int maxTunnels();

        /** A bridged connection that moves no byte either way for this long is closed. */
        @WithDefault("10m")
        Duration tunnelIdleTimeout();

        /**
         * Request bodies held for checks (includeRequestBodyInCheck) across all requests, bytes, the
         * copies sent to authorizers included; beyond, a request that needs one is refused (503).
         */
        @WithDefault("33554432")
        long maxBufferedBodyBytes();

        /** From when the waypoint starts holding a body for a check until it holds enough to ask; beyond, 408. */
        @WithDefault("10s")
        Duration bodyReadTimeout();
    }

    interface Http {
        /**
         * The copy of a request body kept while the request may be retried, bytes; a body that
         * grows past it streams on and is not retried (Envoy's buffer limit).
         */
        @WithDefault("1048576")
        long retryBufferBytes();

        /** A request whose stream moves no byte either way for this long ends (408, or a reset once the response began); 0 for never. */
        @WithDefault("5m")
        Duration streamIdleTimeout();

        /**
         * Tunnels to a service port without a declared protocol only: without a first byte from
         * the client within this time, the stream is TCP (and authorized as TCP).
         */
        @WithDefault("1s")
        Duration sniffTimeout();

        /** From the first byte of a request to the end of its headers (Envoy's request_headers_timeout). */
        @WithDefault("10s")
        Duration requestHeaderTimeout();

        /**
         * The longest a request may go without a byte of it, from its first byte until it is
         * received whole or its response begins (while the waypoint reads it); 408 beyond.
         */
        @WithDefault("30s")
        Duration requestTimeout();

        /** An HTTP connection inside a tunnel with no request in flight closes after this (Envoy's idle_timeout). */
        @WithDefault("5m")
        Duration idleTimeout();

        /** Copies of request bodies held for retries at once, across all connections; beyond it requests are not retried. */
        @WithDefault("67108864")
        long maxBufferedBodyBytes();

        /** Istio's meshConfig pathNormalization: NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES. */
        @WithDefault("MERGE_SLASHES")
        String pathNormalization();

        /**
         * Envoy's path_with_escaped_slashes_action for %2F and %5C: KEEP_UNCHANGED, REJECT_REQUEST,
         * UNESCAPE_AND_REDIRECT, UNESCAPE_AND_FORWARD (DECODE_AND_MERGE_SLASHES implies the last).
         */
        @WithDefault("REJECT_REQUEST")
        String escapedSlashes();

        /** Retry budget when a route sets none: retries may be at most this percentage of active requests. */
        @WithDefault("20")
        int retryBudgetPercent();

        /** Retries always allowed concurrently, whatever the budget (as Envoy's min_retry_concurrency). */
        @WithDefault("3")
        int minRetryConcurrency();

        /** RequestMirror copies under way at once (their bodies held included); one more is dropped and counted. */
        @WithDefault("128")
        int maxMirrorsInFlight();

        /** The longest a mirrored copy may take (or the route's timeout, if shorter); then it is reset. */
        @WithDefault("10s")
        Duration mirrorTimeout();
    }
}
