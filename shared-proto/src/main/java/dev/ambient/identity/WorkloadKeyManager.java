package dev.ambient.identity;

import java.net.Socket;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedKeyManager;

/**
 * Presents the one workload certificate, whatever the peer asks for. The JDK's default key
 * manager would send no client certificate when the server's list of accepted CAs does not name
 * our root (during a root rotation, say); presenting it anyway leaves the decision, and a clear
 * "untrusted" error, to the peer's PKIX check.
 */
final class WorkloadKeyManager extends X509ExtendedKeyManager {

    private static final String ALIAS = "workload";

    private final PrivateKey key;
    private final X509Certificate[] chain;

    WorkloadKeyManager(WorkloadCertificate cert) {
        this.key = cert.privateKey();
        // the peer holds the root already; sending it only makes the handshake bigger
        List<X509Certificate> sent = new ArrayList<>(cert.chain());
        if (sent.size() > 1 && X509.isSelfSigned(sent.getLast())) {
            sent.removeLast();
        }
        this.chain = sent.toArray(X509Certificate[]::new);
    }

    @Override
    public String[] getClientAliases(String keyType, Principal[] issuers) {
        return new String[] {ALIAS};
    }

    @Override
    public String chooseClientAlias(String[] keyTypes, Principal[] issuers, Socket socket) {
        return ALIAS;
    }

    @Override
    public String chooseEngineClientAlias(String[] keyTypes, Principal[] issuers, SSLEngine engine) {
        return ALIAS;
    }

    @Override
    public String[] getServerAliases(String keyType, Principal[] issuers) {
        return new String[] {ALIAS};
    }

    @Override
    public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
        return ALIAS;
    }

    @Override
    public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
        return ALIAS;
    }

    @Override
    public X509Certificate[] getCertificateChain(String alias) {
        return ALIAS.equals(alias) ? chain.clone() : null;
    }

    @Override
    public PrivateKey getPrivateKey(String alias) {
        return ALIAS.equals(alias) ? key : null;
    }
}
