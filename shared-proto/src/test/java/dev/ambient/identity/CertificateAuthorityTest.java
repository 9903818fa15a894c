package dev.ambient.identity;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyPair;
import java.security.PrivateKey;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CertificateAuthorityTest {

    private static final String TD = "cluster.local";
    private static final SpiffeId ID = new SpiffeId(TD, "shop", "cart");

    @Test
    void rootIsASelfSignedP256Ca() {
        CertificateAuthority ca = CertificateAuthority.create(TD, Duration.ofDays(365));
        X509Certificate root = ca.root();
        assertEquals(List.of(root), ca.chainToRoot());
        assertEquals(TD, ca.trustDomain());
        assertTrue(X509.isSelfSigned(root));
        assertEquals("EC", root.getPublicKey().getAlgorithm());
        assertEquals("SHA256withECDSA", root.getSigAlgName());
        assertTrue(root.getBasicConstraints() >= 0);
        assertTrue(root.getKeyUsage()[5], "keyCertSign");
        assertEquals(List.of("spiffe://" + TD), X509.uriSans(root));
        assertTrue(root.getSubjectX500Principal().getName().contains("O=" + TD));
        Instant expectedEnd = Instant.now().plus(Duration.ofDays(365));
        assertTrue(Duration.between(root.getNotAfter().toInstant(), expectedEnd).abs().getSeconds() < 60);
    }

    @Test
    void issuedLeafHasTheWorkloadProfile() throws Exception {
        CertificateAuthority ca = CertificateAuthority.create(TD, Duration.ofDays(365));
        Instant before = Instant.now();
        WorkloadCertificate cert = ca.issue(ID, Duration.ofHours(24));
        X509Certificate leaf = cert.leaf();

        assertEquals(ID, cert.identity());
        assertEquals(List.of(leaf, ca.root()), cert.chain());
        assertEquals(ca.root(), cert.root());
        leaf.verify(ca.root().getPublicKey());
        assertEquals(ca.root().getSubjectX500Principal(), leaf.getIssuerX500Principal());
        assertEquals("", leaf.getSubjectX500Principal().getName());

        // the URI SAN is the only name, and critical
        assertEquals(1, leaf.getSubjectAlternativeNames().size());
        assertEquals(List.of(ID.uri()), X509.uriSans(leaf));
        assertEquals(ID, SpiffeId.fromCertificate(leaf));
        assertTrue(leaf.getCriticalExtensionOIDs().containsAll(Set.of("2.5.29.17", "2.5.29.19", "2.5.29.15")),
                leaf.getCriticalExtensionOIDs().toString());
        assertEquals(-1, leaf.getBasicConstraints());
        boolean[] usage = leaf.getKeyUsage();
        assertTrue(usage[0], "digitalSignature");
        assertTrue(usage[2], "keyEncipherment");
        assertFalse(usage[5], "keyCertSign");
        assertEquals(List.of("1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"), leaf.getExtendedKeyUsage());
        assertEquals(128, leaf.getSerialNumber().bitLength());

        // validity [now-1min, now+24h], renewal at half-life
        Duration backdate = Duration.between(cert.notBefore(), before);
        assertTrue(backdate.compareTo(Duration.ofSeconds(55)) > 0 && backdate.compareTo(Duration.ofSeconds(65)) < 0,
                backdate.toString());
        Duration lifetime = Duration.between(cert.notBefore(), cert.notAfter());
        assertTrue(lifetime.minus(Duration.ofHours(24).plusMinutes(1)).abs().getSeconds() < 5, lifetime.toString());
        assertEquals(cert.notBefore().plus(lifetime.dividedBy(2)), cert.renewAt());
        assertTrue(cert.validAt(Instant.now()));
        assertFalse(cert.validAt(cert.notAfter().plusSeconds(1)));

        // and a standard PKIX validator agrees
        PKIXParameters parameters = new PKIXParameters(Set.of(new TrustAnchor(ca.root(), null)));
        parameters.setRevocationEnabled(false);
        CertPathValidator.getInstance("PKIX").validate(
                CertificateFactory.getInstance("X.509").generateCertPath(List.of(leaf)), parameters);
    }

    @Test
    void serialsAreRandom() {
        CertificateAuthority ca = CertificateAuthority.create(TD, Duration.ofDays(1));
        assertNotEquals(ca.issue(ID, Duration.ofHours(1)).leaf().getSerialNumber(),
                ca.issue(ID, Duration.ofHours(1)).leaf().getSerialNumber());
    }

    @Test
    void lifetimeIsCappedToTheSigner() {
        CertificateAuthority ca = CertificateAuthority.create(TD, Duration.ofHours(2));
        WorkloadCertificate cert = ca.issue(ID, Duration.ofHours(24));
        assertEquals(ca.root().getNotAfter().toInstant(), cert.notAfter());
    }

    @Test
    void signWithExplicitValidityMakesExpiredCertificates() {
        CertificateAuthority ca = CertificateAuthority.create(TD, Duration.ofDays(1));
        KeyPair keys = CertificateRequests.newKeyPair();
        Instant start = Instant.now().minus(Duration.ofHours(3));
        Instant end = Instant.now().minus(Duration.ofHours(1));
        WorkloadCertificate expired = new WorkloadCertificate(ID, keys.getPrivate(),
                ca.sign(keys.getPublic(), ID, start, end));
        assertEquals(end.getEpochSecond(), expired.notAfter().getEpochSecond());
        assertFalse(expired.validAt(Instant.now()));
        assertThrows(IllegalArgumentException.class, () -> ca.sign(keys.getPublic(), ID, end, start));
    }

    @Test
    void workloadCertificateChecksItsParts() {
        CertificateAuthority ca = CertificateAuthority.create(TD, Duration.ofDays(1));
        WorkloadCertificate cert = ca.issue(ID, Duration.ofHours(1));
        KeyPair other = CertificateRequests.newKeyPair();
        IllegalArgumentException wrongKey = assertThrows(IllegalArgumentException.class,
                () -> new WorkloadCertificate(ID, other.getPrivate(), cert.chain()));
        assertTrue(wrongKey.getMessage().contains("does not belong"), wrongKey.getMessage());
        IllegalArgumentException wrongId = assertThrows(IllegalArgumentException.class,
                () -> new WorkloadCertificate(new SpiffeId(TD, "shop", "admin"), cert.privateKey(), cert.chain()));
        assertTrue(wrongId.getMessage().contains("not spiffe://cluster.local/ns/shop/sa/admin"), wrongId.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new WorkloadCertificate(ID, cert.privateKey(), List.of()));
    }

    @Test
    void intermediateSignsWorkloadsBelowTheRoot() throws Exception {
        CertificateAuthority root = CertificateAuthority.create(TD, Duration.ofDays(30));
        CertificateAuthority intermediate = root.createIntermediate(Duration.ofDays(60));
        assertEquals(2, intermediate.chainToRoot().size());
        assertEquals(root.root(), intermediate.root());
        X509Certificate signer = intermediate.chainToRoot().getFirst();
        assertEquals(0, signer.getBasicConstraints());
        // capped to the root's lifetime
        assertEquals(root.root().getNotAfter(), signer.getNotAfter());

        WorkloadCertificate cert = intermediate.issue(ID, Duration.ofHours(1));
        assertEquals(List.of(cert.leaf(), signer, root.root()), cert.chain());
        PKIXParameters parameters = new PKIXParameters(Set.of(new TrustAnchor(root.root(), null)));
        parameters.setRevocationEnabled(false);
        CertPathValidator.getInstance("PKIX").validate(
                CertificateFactory.getInstance("X.509").generateCertPath(cert.chain().subList(0, 2)), parameters);
    }

    @Test
    void ofChecksKeyAndChain() {
        CertificateAuthority root = CertificateAuthority.create(TD, Duration.ofDays(30));
        CertificateAuthority intermediate = root.createIntermediate(Duration.ofDays(10));
        CertificateAuthority stranger = CertificateAuthority.create(TD, Duration.ofDays(30));

        CertificateAuthority rebuilt = CertificateAuthority.of(intermediate.signingKey(), intermediate.chainToRoot());
        assertEquals(TD, rebuilt.trustDomain());
        assertEquals(intermediate.chainToRoot(), rebuilt.chainToRoot());
        rebuilt.issue(ID, Duration.ofHours(1));

        assertOfRefuses("does not belong", stranger.signingKey(), intermediate.chainToRoot());
        assertOfRefuses("chain is broken", intermediate.signingKey(),
                List.of(intermediate.chainToRoot().getFirst(), stranger.root()));
        assertOfRefuses("self-signed root", intermediate.signingKey(), List.of(intermediate.chainToRoot().getFirst()));
        WorkloadCertificate leaf = root.issue(ID, Duration.ofHours(1));
        assertOfRefuses("not a CA", leaf.privateKey(), leaf.chain());
        assertOfRefuses("empty", root.signingKey(), List.of());
        IllegalArgumentException otherDomain = assertThrows(IllegalArgumentException.class,
                () -> CertificateAuthority.of(root.signingKey(), root.chainToRoot(), "other.domain"));
        assertTrue(otherDomain.getMessage().contains("belongs to trust domain cluster.local"), otherDomain.getMessage());
    }

    private static void assertOfRefuses(String reason, PrivateKey key, List<X509Certificate> chain) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CertificateAuthority.of(key, chain));
        assertTrue(e.getMessage().contains(reason), () -> "expected '" + reason + "' in: " + e.getMessage());
    }

    @Test
    void loadOrCreatePersistsTheRoot(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("ca");
        CertificateAuthority created = CertificateAuthority.loadOrCreate(dir, TD, Duration.ofDays(3650));
        Path keyFile = dir.resolve("ca-key.pem");
        Path rootFile = dir.resolve("root-cert.pem");
        assertTrue(Files.exists(rootFile));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(keyFile)));
        assertEquals(List.of(created.root()), Pem.decodeCertificates(Files.readString(rootFile)));
        try (var files = Files.list(dir)) {
            assertEquals(List.of(), files.filter(f -> f.toString().endsWith(".tmp")).toList(),
                    "no temporary files left behind");
        }

        CertificateAuthority loaded = CertificateAuthority.loadOrCreate(dir, TD, Duration.ofDays(3650));
        assertEquals(created.root(), loaded.root());
        assertEquals(TD, loaded.trustDomain());
        assertArrayEquals(created.signingKey().getEncoded(), loaded.signingKey().getEncoded());
        // what the reloaded CA signs chains to the root made the first time
        loaded.issue(ID, Duration.ofHours(1)).leaf().verify(created.root().getPublicKey());
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(keyFile)));
    }

    @Test
    void loadOrCreateRefusesIncompleteOrMismatchedFiles(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("ca");
        CertificateAuthority.loadOrCreate(dir, TD, Duration.ofDays(1));
        String goodKey = Files.readString(dir.resolve("ca-key.pem"));

        Files.delete(dir.resolve("ca-key.pem"));
        IllegalStateException missing = assertThrows(IllegalStateException.class,
                () -> CertificateAuthority.loadOrCreate(dir, TD, Duration.ofDays(1)));
        assertTrue(missing.getMessage().contains("not ca-key.pem"), missing.getMessage());
        assertFalse(Files.exists(dir.resolve("ca-key.pem")), "must not have created a new key");

        Files.writeString(dir.resolve("ca-key.pem"), "garbage");
        IllegalStateException garbage = assertThrows(IllegalStateException.class,
                () -> CertificateAuthority.loadOrCreate(dir, TD, Duration.ofDays(1)));
        assertTrue(garbage.getMessage().contains("unusable"), garbage.getMessage());

        Files.writeString(dir.resolve("ca-key.pem"),
                Pem.encodePrivateKey(CertificateRequests.newKeyPair().getPrivate()));
        IllegalStateException mismatched = assertThrows(IllegalStateException.class,
                () -> CertificateAuthority.loadOrCreate(dir, TD, Duration.ofDays(1)));
        assertTrue(mismatched.getMessage().contains("does not belong"), mismatched.getMessage());

        Files.writeString(dir.resolve("ca-key.pem"), goodKey);
        IllegalStateException otherDomain = assertThrows(IllegalStateException.class,
                () -> CertificateAuthority.loadOrCreate(dir, "other.domain", Duration.ofDays(1)));
        assertTrue(otherDomain.getMessage().contains("trust domain"), otherDomain.getMessage());
        CertificateAuthority.loadOrCreate(dir, TD, Duration.ofDays(1)); // and fine again
    }

    @Test
    void loadOrCreateReadsAPluginIntermediate(@TempDir Path dir) throws Exception {
        CertificateAuthority root = CertificateAuthority.create(TD, Duration.ofDays(30));
        CertificateAuthority intermediate = root.createIntermediate(Duration.ofDays(10));
        Files.writeString(dir.resolve("root-cert.pem"), Pem.encodeCertificate(root.root()));
        Files.writeString(dir.resolve("ca-key.pem"), Pem.encodePrivateKey(intermediate.signingKey()));
        // Istio's cert-chain.pem may or may not end with the root; both load
        for (List<X509Certificate> chain : List.of(intermediate.chainToRoot(), intermediate.chainToRoot().subList(0, 1))) {
            Files.writeString(dir.resolve("cert-chain.pem"), Pem.encodeCertificates(chain));
            CertificateAuthority loaded = CertificateAuthority.loadOrCreate(dir, TD, Duration.ofDays(1));
            assertEquals(intermediate.chainToRoot(), loaded.chainToRoot());
            assertEquals(3, loaded.issue(ID, Duration.ofHours(1)).chain().size());
        }

        CertificateAuthority otherRoot = CertificateAuthority.create(TD, Duration.ofDays(30));
        Files.writeString(dir.resolve("cert-chain.pem"),
                Pem.encodeCertificates(List.of(intermediate.chainToRoot().getFirst(), otherRoot.root())));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> CertificateAuthority.loadOrCreate(dir, TD, Duration.ofDays(1)));
        assertTrue(e.getMessage().contains("different root"), e.getMessage());
    }
}
