package dev.ambient.identity;

import java.net.Socket;
import java.security.GeneralSecurityException;
import java.security.cert.CertPathValidator;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * Accepts a peer whose chain validates with PKIX to one of the trusted roots. There is no host
 * name check on purpose: HBONE authenticates peers by SPIFFE id (checked after the handshake),
 * never by DNS name. Being an {@link X509ExtendedTrustManager} also keeps the JDK from wrapping
 * it in its own endpoint-identification check.
 */
final class PeerTrustManager extends X509ExtendedTrustManager {

    private static final String SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
    private static final String CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
    private static final String ANY_PURPOSE = "2.5.29.37.0";

    private final Set<TrustAnchor> anchors;
    private final X509Certificate[] roots;

    PeerTrustManager(List<X509Certificate> trustRoots) {
        if (trustRoots == null || trustRoots.isEmpty()) {
            throw new IllegalArgumentException("at least one trust root is required");
        }
        Set<TrustAnchor> set = new LinkedHashSet<>();
        trustRoots.forEach(root -> set.add(new TrustAnchor(root, null)));
        this.anchors = Set.copyOf(set);
        this.roots = trustRoots.toArray(X509Certificate[]::new);
    }

    private void check(X509Certificate[] chain, String purpose, String who) throws CertificateException {
        if (chain == null || chain.length == 0) {
            throw new CertificateException(who + " presented no certificate");
        }
        List<X509Certificate> path = new ArrayList<>(Arrays.asList(chain));
        // a PKIX path ends below its trust anchor: drop a root the peer may have sent along
        while (path.size() > 1 && path.getLast().getSubjectX500Principal()
                .equals(path.getLast().getIssuerX500Principal())) {
            path.removeLast();
        }
        try {
            PKIXParameters parameters = new PKIXParameters(anchors);
            // no CRL/OCSP in the mesh: certificates are short-lived instead
            parameters.setRevocationEnabled(false);
            CertPathValidator.getInstance("PKIX")
                    .validate(CertificateFactory.getInstance("X.509").generateCertPath(path), parameters);
        } catch (CertPathValidatorException e) {
            throw new CertificateException(who + " certificate is not trusted: " + e.getMessage(), e);
        } catch (GeneralSecurityException e) {
            throw new CertificateException("cannot validate the " + who + " certificate: " + e.getMessage(), e);
        }
        X509Certificate leaf = chain[0];
        if (leaf.getBasicConstraints() >= 0) {
            throw new CertificateException(who + " presented a CA certificate as its own");
        }
        List<String> purposes = leaf.getExtendedKeyUsage();
        if (purposes != null && !purposes.contains(purpose) && !purposes.contains(ANY_PURPOSE)) {
            throw new CertificateException(who + " certificate is not valid for "
                    + (purpose.equals(SERVER_AUTH) ? "serverAuth" : "clientAuth"));
        }
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        check(chain, CLIENT_AUTH, "client");
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
            throws CertificateException {
        check(chain, CLIENT_AUTH, "client");
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
            throws CertificateException {
        check(chain, CLIENT_AUTH, "client");
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        check(chain, SERVER_AUTH, "server");
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
            throws CertificateException {
        check(chain, SERVER_AUTH, "server");
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
            throws CertificateException {
        check(chain, SERVER_AUTH, "server");
    }

    /** Also the CA names a server lists in its CertificateRequest. */
    @Override
    public X509Certificate[] getAcceptedIssuers() {
        return roots.clone();
    }
}
