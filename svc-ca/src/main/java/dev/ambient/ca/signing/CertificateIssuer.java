package dev.ambient.ca.signing;

import dev.ambient.ca.Refusal;
import dev.ambient.ca.Refusal.Reason;
import dev.ambient.ca.auth.BearerToken;
import dev.ambient.ca.auth.Caller;
import dev.ambient.ca.auth.IdentityAuthorizer;
import dev.ambient.ca.auth.TokenAuthenticator;
import dev.ambient.ca.config.CaConfig;
import dev.ambient.ca.metrics.CaMetrics;
import dev.ambient.ca.root.LoadedRoot;
import dev.ambient.ca.root.RootOfTrust;
import dev.ambient.identity.CertificateRequests;
import dev.ambient.identity.Pem;
import dev.ambient.identity.SpiffeId;
import jakarta.enterprise.context.ApplicationScoped;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.jboss.logging.Logger;

/**
 * One certificate request from start to end: who is asking (token), what for (CSR), may they
 * (identity policy), for how long (lifetime policy), then the signature. Every outcome is counted
 * and logged in one line with its reason. Blocking: call it on a worker thread.
 */
@ApplicationScoped
public class CertificateIssuer {

    private static final Logger LOG = Logger.getLogger(CertificateIssuer.class);
    /** A P-256 CSR is under 1 KiB; anything this big is not one. */
    static final int MAX_CSR_CHARS = 64 * 1024;

    private final RootOfTrust rootOfTrust;
    private final TokenAuthenticator authenticator;
    private final IdentityAuthorizer authorizer;
    private final LifetimePolicy lifetimes;
    private final CaMetrics metrics;

    public CertificateIssuer(RootOfTrust rootOfTrust, TokenAuthenticator authenticator, IdentityAuthorizer authorizer,
            CaMetrics metrics, CaConfig config) {
        this.rootOfTrust = rootOfTrust;
        this.authenticator = authenticator;
        this.authorizer = authorizer;
        this.metrics = metrics;
        this.lifetimes = new LifetimePolicy(config.workloadCert().defaultLifetime(), config.workloadCert().maxLifetime());
    }

    /**
     * Signs the CSR for the caller holding the token in {@code authorizationHeader}.
     *
     * @param peer the caller's address, for the log
     * @return PEM certificates, leaf first, root last
     * @throws Refusal saying why no certificate was issued
     */
    public List<String> issue(String authorizationHeader, String csrPem, long validitySeconds,
            Map<String, String> metadata, String peer) {
        metrics.csrReceived();
        Caller caller = null;
        SpiffeId requested = null;
        try {
            LoadedRoot root = rootOfTrust.current().orElseThrow(() -> new Refusal(Reason.NOT_READY,
                    "the CA has no root of trust loaded yet (" + rootOfTrust.problem() + "); try again later"));
            caller = authenticator.authenticate(BearerToken.from(authorizationHeader));
            requested = requestedIdentity(csrPem);
            Duration lifetime = lifetimes.lifetimeFor(validitySeconds);
            authorizer.authorize(caller, requested, metadata);
            List<X509Certificate> chain = sign(root, CertificateRequests.parsePem(csrPem), lifetime);
            metrics.issued();
            X509Certificate leaf = chain.getFirst();
            LOG.infof("issued %s to %s from %s: serial %s, valid until %s", requested, caller, peer,
                    leaf.getSerialNumber().toString(16), leaf.getNotAfter().toInstant());
            return chain.stream().map(Pem::encodeCertificate).toList();
        } catch (Refusal refusal) {
            metrics.refused(refusal.reason());
            LOG.infof("refused %s for %s from %s [%s]: %s", requested == null ? "a certificate" : requested,
                    caller == null ? "an unauthenticated caller" : caller, peer, refusal.reason().tag(), refusal.getMessage());
            throw refusal;
        }
    }

    private static SpiffeId requestedIdentity(String csrPem) {
        if (csrPem == null || csrPem.isBlank()) {
            throw new Refusal(Reason.INVALID_REQUEST, "bad CSR: the request carries no CSR");
        }
        if (csrPem.length() > MAX_CSR_CHARS) {
            throw new Refusal(Reason.INVALID_REQUEST, "bad CSR: " + csrPem.length() + " characters, more than "
                    + MAX_CSR_CHARS);
        }
        try {
            return CertificateRequests.verifiedIdentity(CertificateRequests.parsePem(csrPem));
        } catch (IllegalArgumentException e) {
            throw new Refusal(Reason.INVALID_REQUEST, "bad CSR: " + e.getMessage(), e);
        } catch (RuntimeException e) { // a parser surprise is still the request's fault, never a crash
            throw new Refusal(Reason.INVALID_REQUEST, "bad CSR: unparsable (" + e + ")", e);
        }
    }

    private static List<X509Certificate> sign(LoadedRoot root, PKCS10CertificationRequest csr, Duration lifetime) {
        try {
            return root.authority().sign(csr, lifetime);
        } catch (IllegalArgumentException e) {
            throw new Refusal(Reason.INVALID_REQUEST, "bad CSR: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            throw new Refusal(Reason.SIGNING_FAILED, "signing failed: " + e.getMessage(), e);
        }
    }
}
