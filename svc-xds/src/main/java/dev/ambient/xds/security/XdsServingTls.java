package dev.ambient.xds.security;

import dev.ambient.controlplane.ControlPlaneEndpoint;
import dev.ambient.controlplane.MeshRootFile;
import dev.ambient.controlplane.ServingCertificateRotation;
import dev.ambient.controlplane.ServingKeyManager;
import dev.ambient.controlplane.ServingTlsCustomizer;
import dev.ambient.identity.CertificateClient;
import dev.ambient.identity.Pem;
import dev.ambient.identity.ServingCertificate;
import io.quarkus.arc.Unremovable;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Singleton;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * svc-xds's serving certificate on 15010, for its Service names ({@code xds.tls.server-names}):
 * by default from svc-ca, with a CSR authenticated by xds's own service-account token (the CA
 * gives DNS names to configured control-plane accounts only), renewed at half-life; or from PEM
 * files. Served from the next handshake on, without a restart. Not ready until one is served.
 *
 * <p>The mesh root is read at start: a missing root file is a start-up error, never a fallback
 * to plaintext or to trusting whatever the CA's port presents. Quarkus's gRPC server picks this
 * bean up as a {@code ServerBuilderCustomizer}.
 */
@Singleton
@Unremovable
public class XdsServingTls extends ServingTlsCustomizer {

    private static final Duration FILE_CHECK_INTERVAL = Duration.ofMinutes(1);

    private final TlsConfig config;
    private CertificateClient ca;
    private ServingCertificateRotation rotation;

    public XdsServingTls(TlsConfig config) {
        super(new ServingKeyManager());
        this.config = config;
    }

    void onStart(@Observes StartupEvent event) {
        Supplier<ServingCertificate> issuer = switch (config.source()) {
            case CA -> {
                ca = new CertificateClient(ControlPlaneEndpoint.of(config.caAddress(), config.caServerName(),
                        MeshRootFile.load(config.rootCertFile()), config.tokenFile()), config.certificateLifetime(),
                        "xds-serving-csr");
                yield () -> ca.issueServing(config.serverNames());
            }
            case FILES -> {
                Path cert = config.certFile().orElseThrow(() -> new IllegalStateException(
                        "xds.tls.source=files needs xds.tls.cert-file and xds.tls.key-file"));
                Path key = config.keyFile().orElseThrow(() -> new IllegalStateException(
                        "xds.tls.source=files needs xds.tls.cert-file and xds.tls.key-file"));
                yield () -> fromFiles(cert, key);
            }
        };
        if (config.source() == TlsConfig.Source.FILES) {
            rotation = new ServingCertificateRotation("svc-xds gRPC", issuer, keys(), FILE_CHECK_INTERVAL).startHere();
        } else { // svc-ca may not answer yet: xds starts (live, not ready) and keeps asking
            rotation = new ServingCertificateRotation("svc-xds gRPC", issuer, keys()).start();
        }
    }

    void onStop(@Observes ShutdownEvent event) {
        if (rotation != null) {
            rotation.close();
        }
        if (ca != null) {
            ca.close();
        }
    }

    public Optional<ServingCertificate> current() {
        return keys().current();
    }

    /** Why no valid serving certificate is served, or empty when one is. */
    public Optional<String> problem() {
        return rotation == null ? Optional.of("not started") : rotation.problem();
    }

    public TlsConfig.Source source() {
        return config.source();
    }

    private static ServingCertificate fromFiles(Path cert, Path key) {
        try {
            return new ServingCertificate(Pem.decodePrivateKey(Files.readString(key, StandardCharsets.US_ASCII)),
                    Pem.decodeCertificates(Files.readString(cert, StandardCharsets.US_ASCII)));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + cert + " / " + key + ": " + e.getMessage(), e);
        }
    }
}
