package dev.ambient.xds.security;

import jakarta.enterprise.context.ApplicationScoped;
import java.util.Locale;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/** Ready only while a valid serving certificate is served: before, no client can complete a handshake. */
@Readiness
@ApplicationScoped
public class ServingCertificateReadiness implements HealthCheck {

    private final XdsServingTls servingTls;

    public ServingCertificateReadiness(XdsServingTls servingTls) {
        this.servingTls = servingTls;
    }

    @Override
    public HealthCheckResponse call() {
        var builder = HealthCheckResponse.named("serving-certificate");
        return servingTls.problem().map(p -> builder.down().withData("reason", p).build())
                .orElseGet(() -> builder.up()
                        .withData("certificate", servingTls.current().map(Object::toString).orElse(""))
                        .withData("source", servingTls.source().name().toLowerCase(Locale.ROOT)).build());
    }
}
