package dev.ambient.identity;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.sec.ECPrivateKey;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.ExtensionsGenerator;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** CSRs as the proxies make them and the CA checks them, and the PEM text they travel in. */
class CertificateRequestsTest {

    private static final SpiffeId ID = new SpiffeId("cluster.local", "shop", "cart");
    private static CertificateAuthority ca;

    @BeforeAll
    static void setUp() {
        ca = CertificateAuthority.create("cluster.local", Duration.ofDays(1));
    }

    @Test
    void roundTripFromProxyToCa() throws Exception {
        KeyPair keys = CertificateRequests.newKeyPair();
        assertEquals("EC", keys.getPublic().getAlgorithm());
        assertTrue(keys.getPublic().toString().contains("secp256r1"), keys.getPublic().toString());

        String pem = CertificateRequests.createPem(keys, ID);
        assertTrue(pem.startsWith("-----BEGIN CERTIFICATE REQUEST-----\n"), pem);
        assertTrue(pem.endsWith("-----END CERTIFICATE REQUEST-----\n"), pem);

        PKCS10CertificationRequest csr = CertificateRequests.parsePem(pem);
        assertEquals("1.2.840.10045.4.3.2", csr.getSignatureAlgorithm().getAlgorithm().getId()); // ecdsa-with-SHA256
        assertEquals(0, csr.getSubject().getRDNs().length);
        assertEquals(ID, CertificateRequests.verifiedIdentity(csr));

        List<X509Certificate> chain = ca.sign(csr, Duration.ofHours(1));
        assertEquals(keys.getPublic(), chain.getFirst().getPublicKey());
        assertEquals(ID, SpiffeId.fromCertificate(chain.getFirst()));
        assertEquals(ca.root(), chain.getLast());
    }

    @Test
    void caRefusesTwoSans() throws Exception {
        PKCS10CertificationRequest csr = csr(CertificateRequests.newKeyPair(),
                new GeneralName(GeneralName.uniformResourceIdentifier, ID.uri()),
                new GeneralName(GeneralName.uniformResourceIdentifier, "spiffe://cluster.local/ns/kube-system/sa/admin"));
        assertRefused(csr, "exactly one SAN, found 2");
    }

    @Test
    void caRefusesAUriSanNextToADnsSan() throws Exception {
        PKCS10CertificationRequest csr = csr(CertificateRequests.newKeyPair(),
                new GeneralName(GeneralName.uniformResourceIdentifier, ID.uri()),
                new GeneralName(GeneralName.dNSName, "evil.example.com"));
        assertRefused(csr, "exactly one SAN, found 2");
    }

    @Test
    void caRefusesADnsSan() throws Exception {
        PKCS10CertificationRequest csr = csr(CertificateRequests.newKeyPair(),
                new GeneralName(GeneralName.dNSName, "cart.shop.svc.cluster.local"));
        assertRefused(csr, "must be a URI SAN with a SPIFFE id, found DNS name cart.shop.svc.cluster.local");
    }

    @Test
    void caRefusesAUriSanThatIsNoWorkloadId() throws Exception {
        assertRefused(csr(CertificateRequests.newKeyPair(),
                new GeneralName(GeneralName.uniformResourceIdentifier, "https://cart.shop/")), "not a workload SPIFFE id");
        assertRefused(csr(CertificateRequests.newKeyPair(),
                new GeneralName(GeneralName.uniformResourceIdentifier, "spiffe://cluster.local")), "not a workload SPIFFE id");
    }

    @Test
    void caRefusesACsrWithoutSan() throws Exception {
        KeyPair keys = CertificateRequests.newKeyPair();
        PKCS10CertificationRequest csr = new JcaPKCS10CertificationRequestBuilder(
                new X500Name("CN=" + ID.uri()), keys.getPublic())
                .build(new JcaContentSignerBuilder("SHA256withECDSA").build(keys.getPrivate()));
        assertRefused(csr, "extensionRequest");
    }

    @Test
    void caRefusesATamperedCsr() {
        String pem = CertificateRequests.createPem(CertificateRequests.newKeyPair(), ID);
        byte[] der = Base64.getMimeDecoder().decode(pem.replaceAll("-----[A-Z ]+-----", ""));
        // rewrite the requested identity inside the signed part: ns/shop -> ns/shoq
        byte[] from = "/ns/shop/".getBytes(StandardCharsets.US_ASCII);
        int at = indexOf(der, from);
        assertTrue(at > 0, "SAN bytes not found");
        der[at + 7] = 'q';
        PKCS10CertificationRequest tampered = assertDoesNotThrowParse(der);
        assertEquals("spiffe://cluster.local/ns/shoq/sa/cart",
                GeneralNames.fromExtensions(tampered.getRequestedExtensions(), Extension.subjectAlternativeName)
                        .getNames()[0].getName().toString());
        assertRefused(tampered, "CSR signature does not match its public key");
    }

    @Test
    void caRefusesACsrSignedByAnotherKey() throws Exception {
        KeyPair claimed = CertificateRequests.newKeyPair();
        KeyPair signer = CertificateRequests.newKeyPair();
        ExtensionsGenerator extensions = new ExtensionsGenerator();
        extensions.addExtension(Extension.subjectAlternativeName, true,
                new GeneralNames(new GeneralName(GeneralName.uniformResourceIdentifier, ID.uri())));
        PKCS10CertificationRequest csr = new JcaPKCS10CertificationRequestBuilder(new X500Name(""), claimed.getPublic())
                .addAttribute(PKCSObjectIdentifiers.pkcs_9_at_extensionRequest, extensions.generate())
                .build(new JcaContentSignerBuilder("SHA256withECDSA").build(signer.getPrivate()));
        assertRefused(csr, "signature");
    }

    @Test
    void caRefusesAnotherTrustDomain() {
        KeyPair keys = CertificateRequests.newKeyPair();
        PKCS10CertificationRequest csr = CertificateRequests.parsePem(
                CertificateRequests.createPem(keys, new SpiffeId("other.domain", "shop", "cart")));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ca.sign(csr, Duration.ofHours(1)));
        assertTrue(e.getMessage().contains("outside trust domain cluster.local"), e.getMessage());
    }

    @Test
    void parsePemRejectsGarbage() {
        assertThrows(IllegalArgumentException.class, () -> CertificateRequests.parsePem("hello"));
        assertThrows(IllegalArgumentException.class, () -> CertificateRequests.parsePem(
                "-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n"));
        assertThrows(IllegalArgumentException.class, () -> CertificateRequests.parsePem(
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"));
        // a certificate is not a request
        assertThrows(IllegalArgumentException.class, () -> CertificateRequests.parsePem(Pem.encodeCertificate(ca.root())));
    }

    @Test
    void pemRoundTripsCertificatesAndKeys() {
        WorkloadCertificate cert = ca.issue(ID, Duration.ofHours(1));
        String chainPem = Pem.encodeCertificates(cert.chain());
        assertEquals(2, chainPem.split("-----BEGIN CERTIFICATE-----", -1).length - 1);
        assertEquals(cert.chain(), Pem.decodeCertificates(chainPem));

        String keyPem = Pem.encodePrivateKey(cert.privateKey());
        assertTrue(keyPem.startsWith("-----BEGIN PRIVATE KEY-----\n"), keyPem);
        PrivateKey key = Pem.decodePrivateKey(keyPem);
        assertArrayEquals(cert.privateKey().getEncoded(), key.getEncoded());
        // the decoded key still belongs to the certificate
        new WorkloadCertificate(ID, key, Pem.decodeCertificates(chainPem));

        // one file holding key and chain, as some tools write them
        assertEquals(cert.chain(), Pem.decodeCertificates(keyPem + chainPem));
        assertArrayEquals(key.getEncoded(), Pem.decodePrivateKey(chainPem + keyPem).getEncoded());
    }

    @Test
    void pemReadsLegacyEcPrivateKeys() throws Exception {
        KeyPair keys = CertificateRequests.newKeyPair();
        // openssl ecparam -genkey writes SEC1 "EC PRIVATE KEY", with the curve inside
        PrivateKeyInfo pkcs8 = PrivateKeyInfo.getInstance(keys.getPrivate().getEncoded());
        byte[] sec1 = new ECPrivateKey(256, ECPrivateKey.getInstance(pkcs8.parsePrivateKey()).getKey(),
                pkcs8.getPrivateKeyAlgorithm().getParameters()).getEncoded();
        String pem = "-----BEGIN EC PRIVATE KEY-----\n" + Base64.getMimeEncoder().encodeToString(sec1)
                + "\n-----END EC PRIVATE KEY-----\n";
        PrivateKey key = Pem.decodePrivateKey(pem);
        assertTrue(X509.keysMatch(key, keys.getPublic()));
    }

    @Test
    void pemRejectsGarbageAndMissingBlocks() {
        assertThrows(IllegalArgumentException.class, () -> Pem.decodeCertificates(""));
        assertThrows(IllegalArgumentException.class, () -> Pem.decodeCertificates("not pem"));
        assertThrows(IllegalArgumentException.class, () -> Pem.decodeCertificates(
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"));
        assertThrows(IllegalArgumentException.class, () -> Pem.decodePrivateKey(Pem.encodeCertificate(ca.root())));
        String key = Pem.encodePrivateKey(CertificateRequests.newKeyPair().getPrivate());
        IllegalArgumentException two = assertThrows(IllegalArgumentException.class, () -> Pem.decodePrivateKey(key + key));
        assertTrue(two.getMessage().contains("found 2"), two.getMessage());
    }

    private static PKCS10CertificationRequest csr(KeyPair keys, GeneralName... names) throws Exception {
        ExtensionsGenerator extensions = new ExtensionsGenerator();
        extensions.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(names));
        return new JcaPKCS10CertificationRequestBuilder(new X500Name(""), keys.getPublic())
                .addAttribute(PKCSObjectIdentifiers.pkcs_9_at_extensionRequest, extensions.generate())
                .build(new JcaContentSignerBuilder("SHA256withECDSA").build(keys.getPrivate()));
    }

    /** Both the check itself and the CA's signing path refuse, with the reason in the message. */
    private static void assertRefused(PKCS10CertificationRequest csr, String reason) {
        IllegalArgumentException checked = assertThrows(IllegalArgumentException.class,
                () -> CertificateRequests.verifiedIdentity(csr));
        assertTrue(checked.getMessage().contains(reason), () -> "expected '" + reason + "' in: " + checked.getMessage());
        // and through PEM, as it reaches the CA over gRPC
        PKCS10CertificationRequest received = CertificateRequests.parsePem(Pem.encodeCertificateRequest(csr));
        IllegalArgumentException signed = assertThrows(IllegalArgumentException.class,
                () -> ca.sign(received, Duration.ofHours(1)));
        assertTrue(signed.getMessage().contains(reason), () -> "expected '" + reason + "' in: " + signed.getMessage());
    }

    private static PKCS10CertificationRequest assertDoesNotThrowParse(byte[] der) {
        try {
            return new PKCS10CertificationRequest(der);
        } catch (Exception e) {
            throw new AssertionError("tampered CSR should still parse", e);
        }
    }

    private static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
