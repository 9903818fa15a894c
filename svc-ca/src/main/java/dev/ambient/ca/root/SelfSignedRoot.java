package dev.ambient.ca.root;

import dev.ambient.identity.CertificateAuthority;
import dev.ambient.identity.CertificateRequests;
import dev.ambient.identity.Pem;
import java.math.BigInteger;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.Map;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.X500NameBuilder;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A new self-signed root whose key can be stored in a Secret. It follows the shared
 * {@link CertificateAuthority}'s conventions (O=trust domain, URI SAN {@code spiffe://<td>}),
 * which keeps its private key to itself and so cannot be used to make a root for a Secret.
 */
final class SelfSignedRoot {

    private static final SecureRandom RANDOM = new SecureRandom();
    private static final Duration BACKDATE = Duration.ofMinutes(1);

    private SelfSignedRoot() {}

    /** The files of a new {@code istio-ca-secret}: {@value CaFiles#CA_CERT} and {@value CaFiles#CA_KEY}. */
    static Map<String, String> create(String trustDomain, Duration lifetime) {
        KeyPair keys = CertificateRequests.newKeyPair();
        X500Name name = new X500NameBuilder(BCStyle.INSTANCE)
                .addRDN(BCStyle.O, trustDomain).addRDN(BCStyle.CN, "Ambient Root CA").build();
        Instant now = Instant.now();
        try {
            X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(name, new BigInteger(128, RANDOM).setBit(127),
                    Date.from(now.minus(BACKDATE)), Date.from(now.plus(lifetime)), name, keys.getPublic());
            JcaX509ExtensionUtils utils = new JcaX509ExtensionUtils();
            builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
            builder.addExtension(Extension.keyUsage, true,
                    new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign | KeyUsage.digitalSignature));
            builder.addExtension(Extension.subjectKeyIdentifier, false, utils.createSubjectKeyIdentifier(keys.getPublic()));
            builder.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(
                    new GeneralName(GeneralName.uniformResourceIdentifier, "spiffe://" + trustDomain)));
            X509Certificate root = new JcaX509CertificateConverter().getCertificate(
                    builder.build(new JcaContentSignerBuilder("SHA256withECDSA").build(keys.getPrivate())));
            // checks key, chain and trust domain the same way a loaded root is checked
            CertificateAuthority.of(keys.getPrivate(), List.of(root), trustDomain);
            return Map.of(CaFiles.CA_CERT, Pem.encodeCertificate(root), CaFiles.CA_KEY, Pem.encodePrivateKey(keys.getPrivate()));
        } catch (GeneralSecurityException | org.bouncycastle.operator.OperatorCreationException
                | org.bouncycastle.cert.CertIOException e) {
            throw new IllegalStateException("cannot create a self-signed root", e);
        }
    }
}
