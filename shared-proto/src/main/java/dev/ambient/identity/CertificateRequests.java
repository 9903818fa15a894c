package dev.ambient.identity;

import java.io.IOException;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.spec.ECGenParameterSpec;
import java.util.Arrays;
import java.util.List;
import org.bouncycastle.asn1.ASN1IA5String;
import org.bouncycastle.asn1.pkcs.Attribute;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.RDN;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.Extensions;
import org.bouncycastle.asn1.x509.ExtensionsGenerator;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.operator.ContentVerifierProvider;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.PKCSException;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;

/**
 * PKCS#10 requests for a SPIFFE identity: the proxies make them, the CA checks them.
 *
 * <p>The request carries only the public key and one URI SAN. The CA copies nothing else from
 * it (subject, other extensions), so a request cannot smuggle in extra names or CA rights.
 */
public final class CertificateRequests {

    private CertificateRequests() {}

    /** A new ECDSA P-256 key pair, the key type used for every workload certificate. */
    public static KeyPair newKeyPair() {
        try {
            KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
            generator.initialize(new ECGenParameterSpec("secp256r1"));
            return generator.generateKeyPair();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("P-256 key generation is unavailable", e);
        }
    }

    /** A PEM CSR for {@code id}: empty subject, the URI SAN as its only name, signed by the key. */
    public static String createPem(KeyPair keys, SpiffeId id) {
        return createPem(keys, new GeneralNames(new GeneralName(GeneralName.uniformResourceIdentifier, id.uri())));
    }

    /** A PEM CSR for a control-plane server: empty subject, the DNS names as its only names. */
    public static String createServerPem(KeyPair keys, List<String> dnsNames) {
        new CertificateSubject.ServerNames(dnsNames); // checks the names
        return createPem(keys, new GeneralNames(dnsNames.stream()
                .map(name -> new GeneralName(GeneralName.dNSName, name)).toArray(GeneralName[]::new)));
    }

    private static String createPem(KeyPair keys, GeneralNames names) {
        try {
            ExtensionsGenerator extensions = new ExtensionsGenerator();
            // critical because the subject is empty (RFC 5280 4.2.1.6), like the issued leaf
            extensions.addExtension(Extension.subjectAlternativeName, true, names);
            PKCS10CertificationRequest csr =
                    new JcaPKCS10CertificationRequestBuilder(new X500Name(new RDN[0]), keys.getPublic())
                            .addAttribute(PKCSObjectIdentifiers.pkcs_9_at_extensionRequest, extensions.generate())
                            .build(new JcaContentSignerBuilder(X509.signatureAlgorithm(keys.getPrivate()))
                                    .build(keys.getPrivate()));
            return Pem.encodeCertificateRequest(csr);
        } catch (IOException | OperatorCreationException e) {
            throw new IllegalStateException("cannot create certificate request", e);
        }
    }

    /** Parses one PEM CERTIFICATE REQUEST; no checks beyond well-formedness. */
    public static PKCS10CertificationRequest parsePem(String pem) {
        return Pem.decodeCertificateRequest(pem);
    }

    /**
     * The identity a CSR asks for, after checking that it is signed by its own key (proof of
     * possession) and that it names exactly one thing: a URI SAN holding a SPIFFE id.
     *
     * @throws IllegalArgumentException saying what is wrong with the request
     */
    public static SpiffeId verifiedIdentity(PKCS10CertificationRequest csr) {
        return switch (verifiedSubject(csr)) {
            case CertificateSubject.Workload workload -> workload.identity();
            case CertificateSubject.ServerNames server -> throw new IllegalArgumentException(
                    server.dnsNames().size() == 1
                            ? "CSR SAN must be a URI SAN with a SPIFFE id, found DNS name " + server.dnsNames().getFirst()
                            : "CSR must carry exactly one SAN, found " + server.dnsNames().size());
        };
    }

    /**
     * What a CSR asks for, after checking that it is signed by its own key (proof of possession):
     * either exactly one URI SAN holding a workload SPIFFE id, or only DNS names (a control-plane
     * server). Nothing else, and never both.
     *
     * @throws IllegalArgumentException saying what is wrong with the request
     */
    public static CertificateSubject verifiedSubject(PKCS10CertificationRequest csr) {
        try {
            ContentVerifierProvider verifier =
                    new JcaContentVerifierProviderBuilder().build(csr.getSubjectPublicKeyInfo());
            if (!csr.isSignatureValid(verifier)) {
                throw new IllegalArgumentException("CSR signature does not match its public key");
            }
        } catch (OperatorCreationException | PKCSException e) {
            throw new IllegalArgumentException("CSR signature cannot be verified: " + e.getMessage(), e);
        }

        Attribute[] requests = csr.getAttributes(PKCSObjectIdentifiers.pkcs_9_at_extensionRequest);
        if (requests.length != 1 || requests[0].getAttrValues().size() != 1) {
            throw new IllegalArgumentException("CSR must carry exactly one extensionRequest with a subjectAltName");
        }
        GeneralNames sans;
        try {
            Extensions extensions = Extensions.getInstance(requests[0].getAttrValues().getObjectAt(0));
            sans = GeneralNames.fromExtensions(extensions, Extension.subjectAlternativeName);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("CSR extensionRequest is malformed: " + e.getMessage(), e);
        }
        if (sans == null) {
            throw new IllegalArgumentException("CSR has no subjectAltName");
        }
        GeneralName[] names = sans.getNames();
        if (names.length == 0) {
            throw new IllegalArgumentException("CSR must carry exactly one SAN, found 0");
        }
        if (Arrays.stream(names).allMatch(n -> n.getTagNo() == GeneralName.dNSName)) {
            List<String> dns = Arrays.stream(names).map(n -> ASN1IA5String.getInstance(n.getName()).getString()).toList();
            try {
                return new CertificateSubject.ServerNames(dns);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("CSR DNS names are unusable: " + e.getMessage(), e);
            }
        }
        if (names.length != 1) {
            throw new IllegalArgumentException("CSR must carry exactly one SAN, found " + names.length);
        }
        if (names[0].getTagNo() != GeneralName.uniformResourceIdentifier) {
            throw new IllegalArgumentException("CSR SAN must be a URI SAN with a SPIFFE id, found "
                    + sanType(names[0].getTagNo()) + " " + names[0].getName());
        }
        String uri = ASN1IA5String.getInstance(names[0].getName()).getString();
        try {
            return new CertificateSubject.Workload(SpiffeId.parse(uri));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("CSR URI SAN is not a workload SPIFFE id: " + e.getMessage(), e);
        }
    }

    private static String sanType(int tag) {
        return switch (tag) {
            case GeneralName.dNSName -> "DNS name";
            case GeneralName.iPAddress -> "IP address";
            case GeneralName.rfc822Name -> "e-mail address";
            case GeneralName.directoryName -> "directory name";
            case GeneralName.otherName -> "otherName";
            default -> "name of type " + tag;
        };
    }
}
