package dev.ambient.ca.config;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/** Every {@code ca.*} key; README.md describes each one. */
@ConfigMapping(prefix = "ca")
public interface CaConfig {

    enum Mode {
        /** Root in a Secret, tokens checked by TokenReview, pods looked up in the API. */
        KUBERNETES,
        /** Root in a directory, tokens from a static file, pods from YAML files: no cluster needed. */
        STANDALONE
    }

    @WithDefault("kubernetes")
    Mode mode();

    /** The trust domain of every identity this CA signs. */
    @WithDefault("cluster.local")
    String trustDomain();

    /** The mesh's system namespace: gets the trust bundle ConfigMap whatever its labels. */
    @WithDefault("istio-system")
    String systemNamespace();

    /** {@code namespace/name} of the Secret holding the self-signed root (created when absent). */
    @WithDefault("istio-system/istio-ca-secret")
    String rootSecret();

    /** {@code namespace/name} of an Istio-style plug-in CA Secret; used instead of the root Secret when present. */
    @WithDefault("istio-system/cacerts")
    String pluginSecret();

    /** Lifetime of a root this CA generates itself. */
    @WithDefault("3650d")
    Duration rootLifetime();

    /** How often the Secret is re-read, to pick up a rotated root without a restart. */
    @WithDefault("60s")
    Duration rootReloadInterval();

    /** Pause between attempts while the root cannot be loaded yet (API server unreachable). */
    @WithDefault("5s")
    Duration rootRetryInterval();

    /** A PEM file of further roots to trust (root rotation), in addition to the Secret's. */
    Optional<Path> extraTrustedRoots();

    /** {@code namespace/service-account} of the ztunnels allowed to ask for identities of pods on their node. */
    @WithDefault("istio-system/ztunnel")
    List<String> ztunnelServiceAccount();

    /**
     * {@code namespace/service-account} of control-plane servers (svc-xds) that may get a serving
     * certificate for their Service's DNS names ({@code <name>.<namespace>.svc} and
     * {@code <name>.<namespace>.svc.<cluster-domain>}, the Service named after the account).
     */
    @WithDefault("istio-system/xds")
    List<String> controlPlaneServiceAccounts();

    /** The cluster's DNS domain, for the Service names above. */
    @WithDefault("cluster.local")
    String clusterDomain();

    WorkloadCert workloadCert();

    Tls tls();

    TokenReview tokenReview();

    Bundle bundle();

    Standalone standalone();

    interface WorkloadCert {
        /** Lifetime when the request asks for none (validity_seconds = 0). */
        @WithDefault("24h")
        Duration defaultLifetime();

        /** Longer requests are cut to this. */
        @WithDefault("48h")
        Duration maxLifetime();
    }

    /** The CA's own serving certificate on 15012, issued from the root it signs with. */
    interface Tls {
        /** DNS names clients dial the CA by; the first is what proxies check by default. */
        @WithDefault("ca.istio-system.svc,ca.istio-system.svc.cluster.local")
        List<String> serverNames();

        /** Lifetime of the CA's serving certificate and of those it issues to control-plane servers; renewed at half-life. */
        @WithDefault("12h")
        Duration certificateLifetime();
    }

    interface TokenReview {
        /** How long a TokenReview answer (valid or rejected) is reused for the same token. */
        @WithDefault("30s")
        Duration cacheTtl();

        /** Bound of each of the two caches (valid tokens, rejected tokens). */
        @WithDefault("10000")
        int cacheMaxEntries();

        /** Audiences the token must be valid for (projected token audience); checked before and by the TokenReview. */
        @WithDefault("istio-ca")
        List<String> audiences();

        /** TokenReviews in flight at most; more are refused at once (UNAVAILABLE, retry). */
        @WithDefault("16")
        int maxConcurrent();

        /** TokenReviews in flight at most for one caller address. */
        @WithDefault("4")
        int maxConcurrentPerPeer();
    }

    interface Bundle {
        @WithDefault("istio-ca-root-cert")
        String configMapName();

        /** How often every bundle ConfigMap is checked again even without a Namespace event. */
        @WithDefault("5m")
        Duration resyncInterval();
    }

    interface Standalone {
        /** Directory of root-cert.pem and ca-key.pem (and cert-chain.pem for an intermediate); created when empty. */
        @WithDefault("ca")
        Path dir();

        /** Lines "token namespace serviceaccount [node]"; without it no caller is accepted. */
        Optional<Path> tokenFile();

        /** Kubernetes-style YAML files holding Pods, for ztunnel impersonation in a mesh in a box. */
        Optional<Path> podsDir();
    }
}
