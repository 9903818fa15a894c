package dev.ambient.controlplane;

import dev.ambient.identity.ServingCertificate;
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
import java.util.Locale;
import java.util.Set;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * How a control-plane client checks svc-ca or svc-xds: the chain validates with PKIX to one of
 * the mesh roots in the mounted file (read again when it changes), the leaf may serve
 * (serverAuth), and it names the expected server as a DNS SAN. The expected name is fixed per
 * channel, so dialling an IP still checks the Service name. A workload certificate (SPIFFE id,
 * no DNS name) never passes as a control-plane server.
 */
public final class ServerNameTrustManager extends X509ExtendedTrustManager {

    private static final String SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
    private static final String ANY_PURPOSE = "2.5.29.37.0";

    private final MeshRootFile roots;
    private final String serverName;

    public ServerNameTrustManager(MeshRootFile roots, String serverName) {
        this.roots = roots;
        this.serverName = serverName.toLowerCase(Locale.ROOT);
    }

    void check(X509Certificate[] chain) throws CertificateException {
        if (chain == null || chain.length == 0) {
            throw new CertificateException("the server presented no certificate");
        }
        List<X509Certificate> path = new ArrayList<>(Arrays.asList(chain));
        // a PKIX path ends below its trust anchor: drop a root the server may have sent along
        while (path.size() > 1 && path.getLast().getSubjectX500Principal()
                .equals(path.getLast().getIssuerX500Principal())) {
            path.removeLast();
        }
        Set<TrustAnchor> anchors = new LinkedHashSet<>();
        roots.roots().forEach(root -> anchors.add(new TrustAnchor(root, null)));
        try {
            PKIXParameters parameters = new PKIXParameters(anchors);
            parameters.setRevocationEnabled(false); // short-lived certificates instead
            CertPathValidator.getInstance("PKIX")
                    .validate(CertificateFactory.getInstance("X.509").generateCertPath(path), parameters);
        } catch (CertPathValidatorException e) {
            throw new CertificateException("the server's certificate does not chain to a mesh root in "
                    + roots.path() + ": " + e.getMessage(), e);
        } catch (GeneralSecurityException e) {
            throw new CertificateException("cannot validate the server's certificate: " + e.getMessage(), e);
        }
        X509Certificate leaf = chain[0];
        if (leaf.getBasicConstraints() >= 0) {
            throw new CertificateException("the server presented a CA certificate as its own");
        }
        List<String> purposes = leaf.getExtendedKeyUsage();
        if (purposes != null && !purposes.contains(SERVER_AUTH) && !purposes.contains(ANY_PURPOSE)) {
            throw new CertificateException("the server's certificate is not valid for serverAuth");
        }
        List<String> names;
        try {
            names = ServingCertificate.dnsNames(leaf);
        } catch (IllegalArgumentException e) {
            throw new CertificateException(e.getMessage(), e);
        }
        if (names.stream().noneMatch(n -> n.toLowerCase(Locale.ROOT).equals(serverName))) {
            throw new CertificateException("the server's certificate is for " + (names.isEmpty() ? "no DNS name"
                    : String.join(", ", names)) + ", not " + serverName);
        }
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        check(chain);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
        check(chain);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
            throws CertificateException {
        check(chain);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        throw new CertificateException("a control-plane client does not accept client certificates");
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
        checkClientTrusted(chain, authType);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
            throws CertificateException {
        checkClientTrusted(chain, authType);
    }

    @Override
    public X509Certificate[] getAcceptedIssuers() {
        return roots.roots().toArray(X509Certificate[]::new);
    }
}
