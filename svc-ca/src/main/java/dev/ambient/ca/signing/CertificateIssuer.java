package dev.ambient.ca.signing;

import dev.ambient.auth.AuthenticationFailure;
import dev.ambient.auth.Caller;
import dev.ambient.auth.CallerCredentials;
import dev.ambient.auth.TokenAuthenticator;
import dev.ambient.ca.Refusal;
import dev.ambient.ca.Refusal.Reason;
import dev.ambient.ca.auth.IdentityAuthorizer;
import dev.ambient.ca.auth.ServerNameAuthorizer;
import dev.ambient.ca.config.CaConfig;
import dev.ambient.ca.metrics.CaMetrics;
import dev.ambient.ca.root.LoadedRoot;
import dev.ambient.ca.root.RootOfTrust;
import dev.ambient.identity.CertificateRequests;
import dev.ambient.identity.CertificateSubject;
import dev.ambient.identity.Pem;
import jakarta.enterprise.context.ApplicationScoped;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.jboss.logging.Logger;

/**
 * One certificate request from start to end: who is asking (token), what for (CSR: a workload
 * identity, or a control-plane server's DNS names), may they (identity or server-name policy),
 * for how long (lifetime policy), then the signature. Every outcome is counted and logged in one
 * line with its reason. Blocking: call it on a worker thread.
 */
@ApplicationScoped
public class CertificateIssuer {

    private static final Logger LOG = Logger.getLogger(CertificateIssuer.class);
    /** A P-256 CSR is under 1 KiB; anything this big is not one. */
    static final int MAX_CSR_CHARS = 64 * 1024;

    private final RootOfTrust rootOfTrust;
    private final TokenAuthenticator authenticator;
    private final IdentityAuthorizer authorizer;
    private final ServerNameAuthorizer serverNames;
    private final LifetimePolicy lifetimes;
    private final Duration serverLifetime;
    private final CaMetrics metrics;

    public CertificateIssuer(RootOfTrust rootOfTrust, TokenAuthenticator authenticator, IdentityAuthorizer authorizer,
            ServerNameAuthorizer serverNames, CaMetrics metrics, CaConfig config) {
        this.rootOfTrust = rootOfTrust;
        this.authenticator = authenticator;
        this.authorizer = authorizer;
        this.serverNames = serverNames;
        this.metrics = metrics;
        this.lifetimes = new LifetimePolicy(config.workloadCert().defaultLifetime(), config.workloadCert().maxLifetime());
        this.serverLifetime = config.tls().certificateLifetime();
    }

    /**
     * Signs the CSR for the caller presenting {@code credentials}.
     *
     * @return PEM certificates, leaf first, root last
     * @throws Refusal saying why no certificate was issued
     */
    public List<String> issue(CallerCredentials credentials, String csrPem, long validitySeconds,
            Map<String, String> metadata) {
        metrics.csrReceived();
        Caller caller = null;
        CertificateSubject requested = null;
        try {
            LoadedRoot root = rootOfTrust.current().orElseThrow(() -> new Refusal(Reason.NOT_READY,
                    "the CA has no root of trust loaded yet (" + rootOfTrust.problem() + "); try again later"));
            caller = authenticate(credentials);
            requested = requestedSubject(csrPem);
            Duration lifetime = lifetimes.lifetimeFor(validitySeconds);
            List<X509Certificate> chain = switch (requested) {
                case CertificateSubject.Workload workload -> {
                    authorizer.authorize(caller, workload.identity(), metadata);
                    yield sign(() -> root.authority().sign(CertificateRequests.parsePem(csrPem), lifetime));
                }
                case CertificateSubject.ServerNames names -> {
                    serverNames.authorize(caller, names);
                    Duration capped = lifetime.compareTo(serverLifetime) > 0 ? serverLifetime : lifetime;
                    yield sign(() -> root.authority().signServer(CertificateRequests.parsePem(csrPem), capped));
                }
            };
            metrics.issued();
            X509Certificate leaf = chain.getFirst();
            LOG.infof("issued %s to %s from %s: serial %s, valid until %s", requested, caller, credentials.address(),
                    leaf.getSerialNumber().toString(16), leaf.getNotAfter().toInstant());
            return chain.stream().map(Pem::encodeCertificate).toList();
        } catch (Refusal refusal) {
            metrics.refused(refusal.reason());
            LOG.infof("refused %s for %s from %s [%s]: %s", requested == null ? "a certificate" : requested,
                    caller == null ? "an unauthenticated caller" : caller, credentials.address(), refusal.reason().tag(),
                    refusal.getMessage());
            throw refusal;
        }
    }

    /**
     * Who presents {@code credentials}, as a {@link Refusal} when nobody valid does. For every call
     * of the CA, certificates and trust bundle alike.
     */
    public Caller authenticate(CallerCredentials credentials) {
        try {
            return credentials.authenticate(authenticator);
        } catch (AuthenticationFailure failure) {
            throw new Refusal(switch (failure.kind()) {
                case UNAUTHENTICATED -> Reason.UNAUTHENTICATED;
                case UNAVAILABLE -> Reason.KUBERNETES_UNAVAILABLE;
                case BUSY -> Reason.BUSY;
            }, failure.getMessage(), failure);
        }
    }

    private static CertificateSubject requestedSubject(String csrPem) {
        if (csrPem == null || csrPem.isBlank()) {
            throw new Refusal(Reason.INVALID_REQUEST, "bad CSR: the request carries no CSR");
        }
        if (csrPem.length() > MAX_CSR_CHARS) {
            throw new Refusal(Reason.INVALID_REQUEST, "bad CSR: " + csrPem.length() + " characters, more than "
                    + MAX_CSR_CHARS);
        }
        try {
            return CertificateRequests.verifiedSubject(CertificateRequests.parsePem(csrPem));
        } catch (IllegalArgumentException e) {
            throw new Refusal(Reason.INVALID_REQUEST, "bad CSR: " + e.getMessage(), e);
        } catch (RuntimeException e) { // a parser surprise is still the request's fault, never a crash
            throw new Refusal(Reason.INVALID_REQUEST, "bad CSR: unparsable (" + e + ")", e);
        }
    }

    private static List<X509Certificate> sign(java.util.function.Supplier<List<X509Certificate>> signing) {
        try {
            return signing.get();
        } catch (IllegalArgumentException e) {
            throw new Refusal(Reason.INVALID_REQUEST, "bad CSR: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            throw new Refusal(Reason.SIGNING_FAILED, "signing failed: " + e.getMessage(), e);
        }
    }
}
