package dev.ambient.ca.root;

import jakarta.enterprise.context.ApplicationScoped;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/** Ready once there is a root to sign with and a certificate to serve TLS with; until then the reason. */
@Readiness
@ApplicationScoped
public class RootReadinessCheck implements HealthCheck {

    private final RootOfTrust rootOfTrust;
    private final CaServingTls servingTls;

    public RootReadinessCheck(RootOfTrust rootOfTrust, CaServingTls servingTls) {
        this.rootOfTrust = rootOfTrust;
        this.servingTls = servingTls;
    }

    @Override
    public HealthCheckResponse call() {
        var builder = HealthCheckResponse.named("root-of-trust");
        var tlsProblem = servingTls.problem();
        if (rootOfTrust.current().isPresent() && tlsProblem.isPresent()) {
            return builder.down().withData("reason", "no serving certificate: " + tlsProblem.get()).build();
        }
        return rootOfTrust.current()
                .map(root -> builder.up()
                        .withData("source", root.source())
                        .withData("trustDomain", root.authority().trustDomain())
                        .withData("trustedRoots", root.trustedRoots().size())
                        .withData("signerNotAfter", root.authority().chainToRoot().getFirst().getNotAfter().toInstant().toString())
                        .withData("servingCertificate", servingTls.current().map(Object::toString).orElse("none"))
                        .build())
                .orElseGet(() -> builder.down().withData("reason", String.valueOf(rootOfTrust.problem())).build());
    }
}
