package dev.ambient.ca.root;

import dev.ambient.ca.config.CaConfig;
import dev.ambient.controlplane.ServingCertificateRotation;
import dev.ambient.controlplane.ServingKeyManager;
import dev.ambient.controlplane.ServingTlsCustomizer;
import dev.ambient.identity.ServingCertificate;
import io.quarkus.arc.Unremovable;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Singleton;
import java.util.Optional;

/**
 * The CA's own serving certificate on 15012: issued by the CA itself from the key it signs with
 * (so it chains to the mesh root every client has mounted), for {@code ca.tls.server-names},
 * renewed at half-life and at once when the root changes, served from the next handshake on
 * without a restart. Until the root is loaded there is nothing to serve and handshakes fail.
 * Quarkus's gRPC server picks this bean up as a {@code ServerBuilderCustomizer}.
 */
@Singleton
@Unremovable
public class CaServingTls extends ServingTlsCustomizer {

    private final CaConfig config;
    private final RootOfTrust rootOfTrust;
    private ServingCertificateRotation rotation;

    public CaServingTls(CaConfig config, RootOfTrust rootOfTrust) {
        super(new ServingKeyManager());
        this.config = config;
        this.rootOfTrust = rootOfTrust;
    }

    void onStart(@Observes StartupEvent event) {
        rotation = new ServingCertificateRotation("svc-ca gRPC", this::issue, keys()).start();
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
        return keys().current();
    }

    private ServingCertificate issue() {
        LoadedRoot root = rootOfTrust.current().orElseThrow(() -> new IllegalStateException(
                "no root of trust loaded yet (" + rootOfTrust.problem() + ")"));
        return root.authority().issueServer(config.tls().serverNames(), config.tls().certificateLifetime());
    }
}
