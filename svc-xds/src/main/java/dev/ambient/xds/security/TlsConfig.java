package dev.ambient.xds.security;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/** svc-xds's serving certificate on 15010 ({@code xds.tls.*}); README.md describes each key. */
@ConfigMapping(prefix = "xds.tls")
public interface TlsConfig {

    enum Source {
        /** A CSR to svc-ca, authenticated by xds's own service-account token, renewed at half-life. */
        CA,
        /** PEM files (cert-file, key-file), e.g. from cert-manager; read again every minute. */
        FILES
    }

    @WithDefault("ca")
    Source source();

    /** The DNS names of the certificate: the names clients dial xds by (its Service). */
    @WithDefault("xds.istio-system.svc,xds.istio-system.svc.cluster.local")
    List<String> serverNames();

    /** Lifetime asked of svc-ca (the CA caps it). */
    @WithDefault("12h")
    Duration certificateLifetime();

    /** svc-ca's gRPC address. */
    @WithDefault("ca.istio-system.svc:15012")
    String caAddress();

    /** The DNS name svc-ca's certificate must carry; default: the host of ca-address. */
    Optional<String> caServerName();

    /** The mesh root (the istio-ca-root-cert ConfigMap, mounted): how svc-ca is verified. */
    @WithDefault("/var/run/secrets/istio/root-cert.pem")
    Path rootCertFile();

    /** xds's own service-account token (projected, audience istio-ca), sent with the CSR. */
    @WithDefault("/var/run/secrets/tokens/ambient-ca-token")
    Path tokenFile();

    /** For source=files. */
    Optional<Path> certFile();

    Optional<Path> keyFile();
}
