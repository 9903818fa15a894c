package dev.ambient.ca.root;

import dev.ambient.ca.config.CaConfig;
import dev.ambient.controlplane.ServingCertificateRotation;
import dev.ambient.controlplane.ServingKeyManager;
import dev.ambient.controlplane.ServingTlsCustomizer;
import dev.ambient.identity.ServingCertificate;
import io.quarkus.arc.Unremovable;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import java.util.Optional;

/**
 * The CA's own serving certificate on 15012: issued by the CA itself from the key it signs with
 * (so it chains to the mesh root every client has mounted), for {@code ca.tls.server-names},
 * renewed at half-life and at once when the root changes, served from the next handshake on
 * without a restart. Until the root is loaded there is nothing to serve and handshakes fail.
 */
@ApplicationScoped
public class CaServingTls {

    private final CaConfig config;
    private final RootOfTrust rootOfTrust;
    private final ServingKeyManager keys = new ServingKeyManager();
    private ServingCertificateRotation rotation;

    public CaServingTls(CaConfig config, RootOfTrust rootOfTrust) {
        this.config = config;
        this.rootOfTrust = rootOfTrust;
    }

    /** Quarkus's gRPC server picks this up and serves TLS 1.3 with what {@link #keys} holds. */
    @Produces
    @Singleton
    @Unremovable
    ServingTlsCustomizer grpcTls() {
        return new ServingTlsCustomizer(keys);
    }

    void onStart(@Observes StartupEvent event) {
        rotation = new ServingCertificateRotation("svc-ca gRPC", this::issue, keys).start();
    }

    void onRootChange(@Observes LoadedRoot root) {
        if (rotation != null) {
            rotation.renewNow();
        }
    }

    void onStop(@Observes ShutdownEvent event) {
        if (rotation != null) {
            rotation.close();
        }
    }

    /** Why no valid serving certificate is served, or empty when one is. */
    public Optional<String> problem() {
        return rotation == null ? Optional.of("not started") : rotation.problem();
    }

    public Optional<ServingCertificate> current() {
        return keys.current();
    }

    private ServingCertificate issue() {
        LoadedRoot root = rootOfTrust.current().orElseThrow(() -> new IllegalStateException(
                "no root of trust loaded yet (" + rootOfTrust.problem() + ")"));
        return root.authority().issueServer(config.tls().serverNames(), config.tls().certificateLifetime());
    }
}
