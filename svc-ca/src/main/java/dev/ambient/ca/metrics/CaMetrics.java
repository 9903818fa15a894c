package dev.ambient.ca.metrics;

import dev.ambient.ca.Refusal;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import jakarta.enterprise.context.ApplicationScoped;
import java.security.cert.X509Certificate;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The CA's metrics, under Istio's names ({@code citadel_server_*}) so that Istio dashboards and
 * alerts keep working. Micrometer's Prometheus registry appends {@code _total} to counters.
 */
@ApplicationScoped
public class CaMetrics {

    private final Counter csrs;
    private final Counter issued;
    private final Counter parsingErrors;
    private final Counter authenticationFailures;
    private final Counter signErrors;
    private final Map<Refusal.Reason, Counter> refusals = new EnumMap<>(Refusal.Reason.class);
    private final AtomicLong rootExpiry = new AtomicLong();
    private final AtomicLong signerExpiry = new AtomicLong();

    public CaMetrics(MeterRegistry registry) {
        csrs = Counter.builder("citadel_server_csr_count")
                .description("Certificate signing requests received").register(registry);
        issued = Counter.builder("citadel_server_success_cert_issuance_count")
                .description("Certificates issued").register(registry);
        parsingErrors = Counter.builder("citadel_server_csr_parsing_err_count")
                .description("Requests refused because the CSR was malformed").register(registry);
        authenticationFailures = Counter.builder("citadel_server_authentication_failure_count")
                .description("Requests refused because the caller could not be authenticated").register(registry);
        signErrors = Counter.builder("citadel_server_csr_sign_err_count")
                .description("Requests that failed while signing").register(registry);
        for (Refusal.Reason reason : Refusal.Reason.values()) {
            refusals.put(reason, Counter.builder("citadel_server_csr_refused_count")
                    .description("Requests refused, by reason").tag("reason", reason.tag()).register(registry));
        }
        Gauge.builder("citadel_server_root_cert_expiry_timestamp", rootExpiry, AtomicLong::doubleValue)
                .description("Expiry of the root certificate, seconds since the epoch (0 = no root loaded)")
                .register(registry);
        Gauge.builder("citadel_server_cert_chain_expiry_timestamp", signerExpiry, AtomicLong::doubleValue)
                .description("Expiry of the signing certificate, seconds since the epoch (0 = no root loaded)")
                .register(registry);
    }

    public void csrReceived() {
        csrs.increment();
    }

    public void issued() {
        issued.increment();
    }

    public void refused(Refusal.Reason reason) {
        refusals.get(reason).increment();
        switch (reason) {
            case UNAUTHENTICATED -> authenticationFailures.increment();
            case INVALID_REQUEST -> parsingErrors.increment();
            case SIGNING_FAILED -> signErrors.increment();
            default -> { }
        }
    }

    public void rootLoaded(X509Certificate signer, X509Certificate root) {
        rootExpiry.set(root.getNotAfter().toInstant().getEpochSecond());
        signerExpiry.set(signer.getNotAfter().toInstant().getEpochSecond());
    }
}
