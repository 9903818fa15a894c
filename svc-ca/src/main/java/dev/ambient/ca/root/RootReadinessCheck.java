package dev.ambient.ca.root;

import jakarta.enterprise.context.ApplicationScoped;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/** Ready once there is a root to sign with; until then the reason it is missing. */
@Readiness
@ApplicationScoped
public class RootReadinessCheck implements HealthCheck {

    private final RootOfTrust rootOfTrust;

    public RootReadinessCheck(RootOfTrust rootOfTrust) {
        this.rootOfTrust = rootOfTrust;
    }

    @Override
    public HealthCheckResponse call() {
        var builder = HealthCheckResponse.named("root-of-trust");
        return rootOfTrust.current()
                .map(root -> builder.up()
                        .withData("source", root.source())
                        .withData("trustDomain", root.authority().trustDomain())
                        .withData("trustedRoots", root.trustedRoots().size())
                        .withData("signerNotAfter", root.authority().chainToRoot().getFirst().getNotAfter().toInstant().toString())
                        .build())
                .orElseGet(() -> builder.down().withData("reason", String.valueOf(rootOfTrust.problem())).build());
    }
}
