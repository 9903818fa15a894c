package dev.ambient.identity;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import org.bouncycastle.asn1.ASN1OctetString;
import org.bouncycastle.asn1.x500.RDN;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.X500NameBuilder;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x509.AuthorityKeyIdentifier;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.asn1.x509.SubjectKeyIdentifier;
import org.bouncycastle.cert.CertIOException;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequest;

/**
 * A signing authority for one trust domain: a signer certificate (a self-signed root, or an
 * intermediate below a root, Istio's "plug-in CA") with its private key.
 *
 * <p>Roots and intermediates made here carry the trust domain as {@code O=} in their subject and
 * as the URI SAN {@code spiffe://<trust-domain>} (the SPIFFE spec's name for a signing
 * certificate), so {@link #of(PrivateKey, List)} can tell the trust domain back.
 */
public final class CertificateAuthority {

    public static final String ROOT_CERT_FILE = "root-cert.pem";
    public static final String KEY_FILE = "ca-key.pem";
    public static final String CERT_CHAIN_FILE = "cert-chain.pem";

    /** Issued certificates start a minute early so that small clock skew between nodes is harmless. */
    private static final Duration BACKDATE = Duration.ofMinutes(1);
    private static final Set<PosixFilePermission> OWNER_READ_WRITE = PosixFilePermissions.fromString("rw-------");
    private static final SecureRandom RANDOM = new SecureRandom();

    private final PrivateKey key;
    private final List<X509Certificate> chainToRoot;
    private final String trustDomain;

    private CertificateAuthority(PrivateKey key, List<X509Certificate> chainToRoot, String trustDomain) {
        this.key = key;
        this.chainToRoot = chainToRoot;
        this.trustDomain = trustDomain;
    }

    /** A new self-signed ECDSA P-256 root, in memory only. */
    public static CertificateAuthority create(String trustDomain, Duration rootLifetime) {
        SpiffeId.checkTrustDomain(trustDomain);
        requirePositive(rootLifetime);
        KeyPair keys = CertificateRequests.newKeyPair();
        X500Name name = caName(trustDomain, "Ambient Root CA");
        Instant now = Instant.now();
        X509Certificate root = build(name, keys.getPrivate(), name, keys.getPublic(),
                now.minus(BACKDATE), now.plus(rootLifetime),
                certificate -> addCaExtensions(certificate, keys.getPublic(), trustDomain, null));
        return new CertificateAuthority(keys.getPrivate(), List.of(root), trustDomain);
    }

    /**
     * Reads the CA from {@code dir}: {@value #ROOT_CERT_FILE} and {@value #KEY_FILE}, plus
     * {@value #CERT_CHAIN_FILE} (signer first) when the key belongs to an intermediate. When none
     * of them exist, creates a new root and writes both files (the key with mode 0600).
     *
     * @throws IllegalStateException when the files are incomplete, unparsable or do not match
     * @throws UncheckedIOException when they cannot be read or written
     */
    public static CertificateAuthority loadOrCreate(Path dir, String trustDomain, Duration rootLifetime) {
        // Several processes (the ztunnels of a mesh on one machine) may start at once on the same
        // directory: without the lock each could create its own root and none would trust another.
        synchronized (CertificateAuthority.class) {
            try {
                Files.createDirectories(dir);
                try (var channel = java.nio.channels.FileChannel.open(dir.resolve(".lock"),
                        java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.WRITE);
                        var lock = channel.lock()) {
                    return loadOrCreateLocked(dir, trustDomain, rootLifetime);
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot lock CA directory " + dir, e);
            }
        }
    }

    private static CertificateAuthority loadOrCreateLocked(Path dir, String trustDomain, Duration rootLifetime) {
        Path rootFile = dir.resolve(ROOT_CERT_FILE);
        Path keyFile = dir.resolve(KEY_FILE);
        Path chainFile = dir.resolve(CERT_CHAIN_FILE);
        boolean hasRoot = Files.exists(rootFile);
        boolean hasKey = Files.exists(keyFile);
        if (!hasRoot && !hasKey) {
            if (Files.exists(chainFile)) {
                throw new IllegalStateException(chainFile + " exists but " + ROOT_CERT_FILE + " and "
                        + KEY_FILE + " do not; refusing to create a new root next to it");
            }
            CertificateAuthority ca = create(trustDomain, rootLifetime);
            try {
                Files.createDirectories(dir);
                // key first: a root certificate on disk must never lack its key
                write(keyFile, Pem.encodePrivateKey(ca.key), true);
                write(rootFile, Pem.encodeCertificate(ca.root()), false);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write CA files to " + dir, e);
            }
            return ca;
        }
        if (!hasRoot || !hasKey) {
            throw new IllegalStateException(dir + " holds " + (hasRoot ? ROOT_CERT_FILE : KEY_FILE)
                    + " but not " + (hasRoot ? KEY_FILE : ROOT_CERT_FILE)
                    + "; refusing to guess or overwrite (restore the missing file or remove both)");
        }
        try {
            List<X509Certificate> roots = Pem.decodeCertificates(read(rootFile));
            if (roots.size() != 1) {
                throw new IllegalArgumentException(ROOT_CERT_FILE + " holds " + roots.size()
                        + " certificates, expected one");
            }
            X509Certificate root = roots.getFirst();
            PrivateKey caKey = Pem.decodePrivateKey(read(keyFile));
            List<X509Certificate> chain = new ArrayList<>();
            if (Files.exists(chainFile)) {
                chain.addAll(Pem.decodeCertificates(read(chainFile)));
                X509Certificate last = chain.getLast();
                if (X509.isSelfSigned(last) && !last.equals(root)) {
                    throw new IllegalArgumentException(CERT_CHAIN_FILE + " ends in a different root than "
                            + ROOT_CERT_FILE);
                }
            }
            if (chain.isEmpty() || !chain.getLast().equals(root)) {
                chain.add(root);
            }
            return of(caKey, chain, trustDomain);
        } catch (IllegalArgumentException e) {
            throw new IllegalStateException("CA files in " + dir + " are unusable: " + e.getMessage(), e);
        }
    }

    /** A CA from a key and its chain (signer first, root last); the trust domain comes from the chain. */
    public static CertificateAuthority of(PrivateKey key, List<X509Certificate> chainToRoot) {
        if (chainToRoot.isEmpty()) {
            throw new IllegalArgumentException("CA chain is empty");
        }
        for (X509Certificate cert : List.of(chainToRoot.getFirst(), chainToRoot.getLast())) {
            String td = caTrustDomain(cert);
            if (td != null) {
                return of(key, chainToRoot, td);
            }
        }
        throw new IllegalArgumentException("cannot tell the trust domain: neither signer nor root carries a "
                + "spiffe://<trust-domain> URI SAN; use of(key, chain, trustDomain)");
    }

    /**
     * A CA from a key and its chain (signer first, root last) for {@code trustDomain}.
     *
     * @throws IllegalArgumentException when the signer is no CA, the key is not the signer's, the
     *     chain does not link up to a self-signed root, or the signer has expired
     */
    public static CertificateAuthority of(PrivateKey key, List<X509Certificate> chainToRoot, String trustDomain) {
        Objects.requireNonNull(key, "key");
        SpiffeId.checkTrustDomain(trustDomain);
        List<X509Certificate> chain = List.copyOf(chainToRoot);
        if (chain.isEmpty()) {
            throw new IllegalArgumentException("CA chain is empty");
        }
        X509Certificate signer = chain.getFirst();
        if (signer.getBasicConstraints() < 0) {
            throw new IllegalArgumentException("signer certificate " + signer.getSubjectX500Principal()
                    + " is not a CA certificate");
        }
        boolean[] usage = signer.getKeyUsage();
        if (usage != null && !usage[5]) {
            throw new IllegalArgumentException("signer certificate " + signer.getSubjectX500Principal()
                    + " may not sign certificates (keyUsage lacks keyCertSign)");
        }
        if (!X509.keysMatch(key, signer.getPublicKey())) {
            throw new IllegalArgumentException("the private key does not belong to the signer certificate "
                    + signer.getSubjectX500Principal());
        }
        for (int i = 0; i + 1 < chain.size(); i++) {
            X509Certificate child = chain.get(i);
            X509Certificate parent = chain.get(i + 1);
            if (!child.getIssuerX500Principal().equals(parent.getSubjectX500Principal())
                    || !X509.verifiedBy(child, parent.getPublicKey())) {
                throw new IllegalArgumentException("chain is broken: " + child.getSubjectX500Principal()
                        + " is not issued by " + parent.getSubjectX500Principal());
            }
        }
        if (!X509.isSelfSigned(chain.getLast())) {
            throw new IllegalArgumentException("chain must end with a self-signed root, but ends with "
                    + chain.getLast().getSubjectX500Principal());
        }
        if (signer.getNotAfter().toInstant().isBefore(Instant.now())) {
            throw new IllegalArgumentException("signer certificate " + signer.getSubjectX500Principal()
                    + " expired at " + signer.getNotAfter().toInstant());
        }
        for (X509Certificate cert : chain) {
            String named = caTrustDomain(cert);
            if (named != null && !named.equals(trustDomain)) {
                throw new IllegalArgumentException("certificate " + cert.getSubjectX500Principal()
                        + " belongs to trust domain " + named + ", not " + trustDomain);
            }
        }
        return new CertificateAuthority(key, chain, trustDomain);
    }

    /** Signer first, root last. */
    public List<X509Certificate> chainToRoot() {
        return chainToRoot;
    }

    public X509Certificate root() {
        return chainToRoot.getLast();
    }

    public String trustDomain() {
        return trustDomain;
    }

    /**
     * A new intermediate CA signed by this one (path length 0: it signs only workloads), with
     * the same trust domain. For plug-in CA setups and tests.
     */
    public CertificateAuthority createIntermediate(Duration lifetime) {
        requirePositive(lifetime);
        KeyPair keys = CertificateRequests.newKeyPair();
        Instant now = Instant.now();
        X509Certificate cert = build(issuerName(), key, caName(trustDomain, "Ambient Intermediate CA"),
                keys.getPublic(), now.minus(BACKDATE), cappedToSigner(now.plus(lifetime)),
                certificate -> addCaExtensions(certificate, keys.getPublic(), trustDomain, 0));
        List<X509Certificate> chain = new ArrayList<>();
        chain.add(cert);
        chain.addAll(chainToRoot);
        return new CertificateAuthority(keys.getPrivate(), List.copyOf(chain), trustDomain);
    }

    /**
     * Signs a workload certificate for the CSR's key and SPIFFE id, valid from a minute ago for
     * {@code lifetime} but never past the signer's own expiry. Returns the chain leaf..root.
     *
     * @throws IllegalArgumentException when the CSR is invalid or asks for another trust domain
     */
    public List<X509Certificate> sign(PKCS10CertificationRequest csr, Duration lifetime) {
        requirePositive(lifetime);
        SpiffeId id = CertificateRequests.verifiedIdentity(csr);
        PublicKey publicKey = publicKey(csr);
        Instant now = signerValidNow();
        return sign(publicKey, id, now.minus(BACKDATE), cappedToSigner(now.plus(lifetime)));
    }

    /**
     * Signs a workload certificate with exactly the given validity (tests use it for expired
     * certificates). The leaf has an empty subject, its critical URI SAN as only name,
     * CA=false, digitalSignature+keyEncipherment and serverAuth+clientAuth.
     */
    public List<X509Certificate> sign(PublicKey publicKey, SpiffeId id, Instant notBefore, Instant notAfter) {
        Objects.requireNonNull(publicKey, "publicKey");
        if (!id.trustDomain().equals(trustDomain)) {
            throw new IllegalArgumentException("identity " + id + " is outside trust domain " + trustDomain);
        }
        if (!notAfter.isAfter(notBefore)) {
            throw new IllegalArgumentException("notAfter " + notAfter + " is not after notBefore " + notBefore);
        }
        X509.checkAcceptableKey(publicKey);
        X509Certificate leaf = build(issuerName(), key, new X500Name(new RDN[0]), publicKey, notBefore, notAfter,
                certificate -> {
                    certificate.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
                    certificate.addExtension(Extension.keyUsage, true,
                            new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyEncipherment));
                    certificate.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(
                            new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
                    // critical: with an empty subject the SAN is the certificate's only name (RFC 5280 4.2.1.6)
                    certificate.addExtension(Extension.subjectAlternativeName, true,
                            new GeneralNames(new GeneralName(GeneralName.uniformResourceIdentifier, id.uri())));
                    certificate.addExtension(Extension.authorityKeyIdentifier, false, authorityKeyId());
                });
        List<X509Certificate> chain = new ArrayList<>();
        chain.add(leaf);
        chain.addAll(chainToRoot);
        return List.copyOf(chain);
    }

    /**
     * Signs a control-plane server certificate (svc-ca's own, svc-xds's) for a CSR that names only
     * DNS names: valid from a minute ago for {@code lifetime}, never past the signer's expiry. The
     * leaf carries the DNS names as its only names and may serve only (serverAuth), so it can never
     * pass as a workload in HBONE. Who may have which names is the caller's decision.
     *
     * @throws IllegalArgumentException when the CSR is invalid or asks for anything but DNS names
     */
    public List<X509Certificate> signServer(PKCS10CertificationRequest csr, Duration lifetime) {
        requirePositive(lifetime);
        if (!(CertificateRequests.verifiedSubject(csr) instanceof CertificateSubject.ServerNames names)) {
            throw new IllegalArgumentException("a server certificate request must name DNS names only");
        }
        PublicKey publicKey = publicKey(csr);
        Instant now = signerValidNow();
        X509.checkAcceptableKey(publicKey);
        X509Certificate leaf = build(issuerName(), key, new X500Name(new RDN[0]), publicKey, now.minus(BACKDATE),
                cappedToSigner(now.plus(lifetime)), certificate -> {
                    certificate.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
                    certificate.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature));
                    certificate.addExtension(Extension.extendedKeyUsage, false,
                            new ExtendedKeyUsage(KeyPurposeId.id_kp_serverAuth));
                    certificate.addExtension(Extension.subjectAlternativeName, true, new GeneralNames(names.dnsNames()
                            .stream().map(n -> new GeneralName(GeneralName.dNSName, n)).toArray(GeneralName[]::new)));
                    certificate.addExtension(Extension.authorityKeyIdentifier, false, authorityKeyId());
                });
        List<X509Certificate> chain = new ArrayList<>();
        chain.add(leaf);
        chain.addAll(chainToRoot);
        return List.copyOf(chain);
    }

    private static PublicKey publicKey(PKCS10CertificationRequest csr) {
        try {
            return new JcaPKCS10CertificationRequest(csr).getPublicKey();
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException("CSR public key is unusable: " + e.getMessage(), e);
        }
    }

    /** Now, when the signer is still valid. */
    private Instant signerValidNow() {
        Instant now = Instant.now();
        if (!signer().getNotAfter().toInstant().isAfter(now)) {
            throw new IllegalStateException("CA certificate expired at " + signer().getNotAfter().toInstant());
        }
        return now;
    }

    /** A new key and a server certificate for {@code dnsNames}: the CA's own serving certificate. */
    public ServingCertificate issueServer(List<String> dnsNames, Duration lifetime) {
        KeyPair keys = CertificateRequests.newKeyPair();
        PKCS10CertificationRequest csr = CertificateRequests.parsePem(CertificateRequests.createServerPem(keys, dnsNames));
        return new ServingCertificate(keys.getPrivate(), signServer(csr, lifetime));
    }

    /** New key pair, CSR and signature in one step: for standalone proxies and tests. */
    public WorkloadCertificate issue(SpiffeId id, Duration lifetime) {
        KeyPair keys = CertificateRequests.newKeyPair();
        PKCS10CertificationRequest csr = CertificateRequests.parsePem(CertificateRequests.createPem(keys, id));
        return new WorkloadCertificate(id, keys.getPrivate(), sign(csr, lifetime));
    }

    @Override
    public String toString() {
        return "CertificateAuthority[" + trustDomain + ", signer " + signer().getSubjectX500Principal()
                + ", root serial " + root().getSerialNumber().toString(16) + "]";
    }

    /** The signer's private key: for writing plug-in CA files and for tests, never for the wire. */
    PrivateKey signingKey() {
        return key;
    }

    private X509Certificate signer() {
        return chainToRoot.getFirst();
    }

    private X500Name issuerName() {
        // the signer's subject exactly as encoded, so that name chaining compares equal bytes
        return X500Name.getInstance(signer().getSubjectX500Principal().getEncoded());
    }

    private Instant cappedToSigner(Instant notAfter) {
        Instant signerEnd = signer().getNotAfter().toInstant();
        return notAfter.isAfter(signerEnd) ? signerEnd : notAfter;
    }

    /** AKI = the signer's SKI, so path builders can pick the right root when several share a name. */
    private AuthorityKeyIdentifier authorityKeyId() {
        byte[] ski = signer().getExtensionValue(Extension.subjectKeyIdentifier.getId());
        try {
            if (ski != null) {
                return new AuthorityKeyIdentifier(SubjectKeyIdentifier
                        .getInstance(ASN1OctetString.getInstance(ski).getOctets()).getKeyIdentifier());
            }
            return new JcaX509ExtensionUtils().createAuthorityKeyIdentifier(signer().getPublicKey());
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            throw new IllegalStateException("cannot derive the authority key identifier", e);
        }
    }

    private static X500Name caName(String trustDomain, String commonName) {
        return new X500NameBuilder(BCStyle.INSTANCE)
                .addRDN(BCStyle.O, trustDomain)
                .addRDN(BCStyle.CN, commonName)
                .build();
    }

    private static void addCaExtensions(X509v3CertificateBuilder certificate, PublicKey publicKey,
            String trustDomain, Integer pathLength) throws IOException {
        try {
            JcaX509ExtensionUtils utils = new JcaX509ExtensionUtils();
            certificate.addExtension(Extension.basicConstraints, true,
                    pathLength == null ? new BasicConstraints(true) : new BasicConstraints(pathLength));
            certificate.addExtension(Extension.keyUsage, true,
                    new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign | KeyUsage.digitalSignature));
            certificate.addExtension(Extension.subjectKeyIdentifier, false,
                    utils.createSubjectKeyIdentifier(publicKey));
            certificate.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(
                    new GeneralName(GeneralName.uniformResourceIdentifier, "spiffe://" + trustDomain)));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The trust domain named by a CA certificate's {@code spiffe://<td>} URI SAN, or null. */
    private static String caTrustDomain(X509Certificate cert) {
        for (String uri : X509.uriSans(cert)) {
            if (uri.startsWith("spiffe://") && uri.indexOf('/', "spiffe://".length()) < 0) {
                return uri.substring("spiffe://".length());
            }
        }
        return null;
    }

    private interface Extensions {
        void addTo(X509v3CertificateBuilder certificate) throws IOException;
    }

    private static X509Certificate build(X500Name issuer, PrivateKey signingKey, X500Name subject,
            PublicKey subjectKey, Instant notBefore, Instant notAfter, Extensions extensions) {
        // 128 random bits, top bit set: positive, non-zero and always 16 bytes long
        BigInteger serial = new BigInteger(128, RANDOM).setBit(127);
        X509v3CertificateBuilder certificate = new JcaX509v3CertificateBuilder(issuer, serial,
                Date.from(notBefore), Date.from(notAfter), subject, subjectKey);
        try {
            extensions.addTo(certificate);
            return new JcaX509CertificateConverter().getCertificate(certificate.build(
                    new JcaContentSignerBuilder(X509.signatureAlgorithm(signingKey)).build(signingKey)));
        } catch (CertIOException e) {
            throw new IllegalStateException("cannot encode certificate extensions", e);
        } catch (IOException | OperatorCreationException | CertificateException e) {
            throw new IllegalStateException("cannot sign certificate", e);
        }
    }

    private static void requirePositive(Duration lifetime) {
        if (lifetime == null || lifetime.isNegative() || lifetime.isZero()) {
            throw new IllegalArgumentException("lifetime must be positive, was " + lifetime);
        }
    }

    private static String read(Path file) {
        try {
            return Files.readString(file, StandardCharsets.ISO_8859_1); // never fails on stray non-ASCII comments
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    private static void write(Path file, String content, boolean secret) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        if (secret) {
            // created private from the start, so the key is never readable by others, not even briefly
            Files.createFile(tmp, PosixFilePermissions.asFileAttribute(OWNER_READ_WRITE));
            Files.setPosixFilePermissions(tmp, OWNER_READ_WRITE);
        }
        Files.writeString(tmp, content, StandardCharsets.US_ASCII);
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
    }
}
