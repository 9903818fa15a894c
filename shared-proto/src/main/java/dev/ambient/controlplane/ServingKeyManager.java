package dev.ambient.controlplane;

import dev.ambient.identity.ServingCertificate;
import java.net.Socket;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedKeyManager;

/**
 * The key manager of a control-plane server (svc-ca, svc-xds): every handshake gets the serving
 * certificate installed last, so a renewed certificate is served from the next handshake on
 * without rebuilding the TLS context or restarting the server. Connections already open keep
 * the certificate they were established with.
 *
 * <p>The TLS engine chooses an alias first and asks for the chain and key by that alias later;
 * each installed certificate gets its own alias, and the one before stays resolvable, so a
 * rotation between the two calls can never pair one certificate with another's key.
 */
public final class ServingKeyManager extends X509ExtendedKeyManager {

    private record Generation(String alias, ServingCertificate certificate, X509Certificate[] sent) {}

    private final AtomicLong generations = new AtomicLong();
    private volatile Generation current;
    private volatile Generation previous;

    /** Serves {@code certificate} from the next handshake on. */
    public synchronized void install(ServingCertificate certificate) {
        List<X509Certificate> sent = new ArrayList<>(certificate.chain());
        X509Certificate last = sent.getLast();
        // the client holds the root already (from its mounted file): sending it only costs bytes
        if (sent.size() > 1 && last.getSubjectX500Principal().equals(last.getIssuerX500Principal())) {
            sent.removeLast();
        }
        previous = current;
        current = new Generation("serving-" + generations.incrementAndGet(), certificate,
                sent.toArray(X509Certificate[]::new));
    }

    /** The certificate served now, if one has been installed. */
    public Optional<ServingCertificate> current() {
        Generation g = current;
        return g == null ? Optional.empty() : Optional.of(g.certificate());
    }

    private String alias(String keyType) {
        Generation g = current;
        if (g == null || keyType == null) {
            return null; // nothing to serve yet: the handshake fails and the client retries
        }
        String algorithm = g.certificate().privateKey().getAlgorithm();
        // TLS 1.3 asks by key algorithm ("EC"); TLS 1.2 names also the signer's ("EC_EC")
        return keyType.equals(algorithm) || keyType.startsWith(algorithm + "_") ? g.alias() : null;
    }

    private Generation byAlias(String alias) {
        Generation g = current;
        if (g != null && g.alias().equals(alias)) {
            return g;
        }
        Generation p = previous;
        return p != null && p.alias().equals(alias) ? p : null;
    }

    @Override
    public String[] getServerAliases(String keyType, Principal[] issuers) {
        String alias = alias(keyType);
        return alias == null ? null : new String[] {alias};
    }

    @Override
    public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
        return alias(keyType);
    }

    @Override
    public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
        return alias(keyType);
    }

    @Override
    public X509Certificate[] getCertificateChain(String alias) {
        Generation g = byAlias(alias);
        return g == null ? null : g.sent().clone();
    }

    @Override
    public PrivateKey getPrivateKey(String alias) {
        Generation g = byAlias(alias);
        return g == null ? null : g.certificate().privateKey();
    }

    /** A server only: it never presents a client certificate. */
    @Override
    public String[] getClientAliases(String keyType, Principal[] issuers) {
        return null;
    }

    @Override
    public String chooseClientAlias(String[] keyTypes, Principal[] issuers, Socket socket) {
        return null;
    }

    @Override
    public String chooseEngineClientAlias(String[] keyTypes, Principal[] issuers, SSLEngine engine) {
        return null;
    }
}
