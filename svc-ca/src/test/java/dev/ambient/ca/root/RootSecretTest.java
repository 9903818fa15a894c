package dev.ambient.ca.root;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.ca.CaClient;
import dev.ambient.auth.FakeTokenReviews;
import dev.ambient.ca.KubernetesModeProfile;
import dev.ambient.ca.config.CaConfig;
import dev.ambient.identity.CertificateRequests;
import dev.ambient.identity.Pem;
import dev.ambient.identity.SpiffeId;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import jakarta.inject.Inject;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The root of trust in Secrets: created once and reused by every later start or replica, the
 * plug-in {@code cacerts} preferred, extra roots trusted during a rotation, a damaged Secret
 * never overwritten. Runs next to the running CA (same app and mock API server).
 */
@QuarkusTest
@TestProfile(KubernetesModeProfile.class)
@WithKubernetesTestServer(crud = true, setup = FakeTokenReviews.class)
class RootSecretTest {

    @Inject
    KubernetesClient client;
    @Inject
    CaConfig config;
    @Inject
    RootOfTrust running;

    @BeforeEach
    void rootIsLoaded() {
        CaClient.await("the root is loaded", () -> running.current().isPresent());
    }

    @Test
    void rootSecretIsCreatedOnFirstStartAndReusedOnRestart() {
        Secret created = client.secrets().inNamespace("istio-system").withName("istio-ca-secret").get();
        assertEquals(SecretRootSource.SECRET_TYPE, created.getType());
        X509Certificate stored = Pem.decodeCertificates(decoded(created, "ca-cert.pem")).getFirst();
        assertEquals(stored, running.current().orElseThrow().authority().root());

        // a restart, or the second replica: same Secret, same root, nothing written
        LoadedRoot again = new SecretRootSource(client, config).load(true);
        assertEquals(stored, again.authority().root());
        assertEquals(created.getMetadata().getResourceVersion(),
                client.secrets().inNamespace("istio-system").withName("istio-ca-secret").get().getMetadata().getResourceVersion());
    }

    @Test
    void whenTwoReplicasCreateTheRootAtOnceBothUseTheWinners() {
        SecretRootSource first = new SecretRootSource(client, secrets("race/istio-ca-secret", "race/cacerts"));
        SecretRootSource second = new SecretRootSource(client, secrets("race/istio-ca-secret", "race/cacerts"));
        Map<String, String> winner = SelfSignedRoot.create("cluster.local", Duration.ofDays(10));
        Map<String, String> loser = SelfSignedRoot.create("cluster.local", Duration.ofDays(10));

        LoadedRoot won = first.createOrAdopt(winner);
        LoadedRoot lost = second.createOrAdopt(loser); // 409 Conflict, then re-read

        assertEquals(won.authority().root(), lost.authority().root());
        assertNotEquals(Pem.decodeCertificates(loser.get("ca-cert.pem")).getFirst(), lost.authority().root());
        assertEquals(winner.get("ca-cert.pem"),
                decoded(client.secrets().inNamespace("race").withName("istio-ca-secret").get(), "ca-cert.pem"));
    }

    @Test
    void pluginCaSecretIsPreferredAndSignsWithTheIntermediate() throws Exception {
        Map<String, String> root = SelfSignedRoot.create("cluster.local", Duration.ofDays(100));
        Map<String, String> intermediate = intermediate(root);
        SecretRootSource source = new SecretRootSource(client, secrets("plugin/istio-ca-secret", "plugin/cacerts"));
        source.load(true); // a self-signed root exists already...
        secret("plugin", "cacerts", Map.of(
                "ca-cert.pem", intermediate.get("ca-cert.pem"),
                "ca-key.pem", intermediate.get("ca-key.pem"),
                "root-cert.pem", root.get("ca-cert.pem"),
                "cert-chain.pem", intermediate.get("ca-cert.pem") + root.get("ca-cert.pem")));

        LoadedRoot loaded = source.load(true); // ...but the operator's plug-in CA wins

        X509Certificate rootCert = Pem.decodeCertificates(root.get("ca-cert.pem")).getFirst();
        assertEquals(2, loaded.authority().chainToRoot().size());
        assertEquals(rootCert, loaded.authority().root());
        assertEquals("Secret plugin/cacerts", loaded.source());
        SpiffeId id = new SpiffeId("cluster.local", "default", "sleep");
        List<X509Certificate> chain = loaded.authority().sign(CertificateRequests.parsePem(
                CertificateRequests.createPem(CertificateRequests.newKeyPair(), id)), Duration.ofHours(1));
        assertEquals(3, chain.size(), "leaf, intermediate, root");
        CaClient.verifies(chain, rootCert);
    }

    @Test
    void extraTrustedRootsJoinTheBundleDuringARotation() {
        Map<String, String> current = new HashMap<>(SelfSignedRoot.create("cluster.local", Duration.ofDays(100)));
        Map<String, String> next = SelfSignedRoot.create("cluster.local", Duration.ofDays(100));
        current.put("extra-trusted-roots.pem", next.get("ca-cert.pem"));
        secret("rotation", "istio-ca-secret", current);

        LoadedRoot loaded = new SecretRootSource(client, secrets("rotation/istio-ca-secret", "rotation/cacerts")).load(true);

        X509Certificate signing = Pem.decodeCertificates(current.get("ca-cert.pem")).getFirst();
        X509Certificate extra = Pem.decodeCertificates(next.get("ca-cert.pem")).getFirst();
        assertEquals(List.of(signing, extra), loaded.trustedRoots());
        assertEquals(List.of(signing, extra), Pem.decodeCertificates(loaded.trustBundlePem()));
    }

    @Test
    void aDamagedSecretIsReportedAndNeverOverwritten() {
        secret("damaged", "istio-ca-secret", Map.of("ca-cert.pem", "not a certificate", "ca-key.pem", "nor a key"));
        SecretRootSource source = new SecretRootSource(client, secrets("damaged/istio-ca-secret", "damaged/cacerts"));

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> source.load(true));
        assertTrue(e.getMessage().contains("Secret damaged/istio-ca-secret is unusable: ca-cert.pem"), e.getMessage());
        assertEquals("not a certificate",
                decoded(client.secrets().inNamespace("damaged").withName("istio-ca-secret").get(), "ca-cert.pem"));
    }

    // ---------------------------------------------------------------------------------------

    private CaConfig secrets(String rootSecret, String pluginSecret) {
        return (CaConfig) Proxy.newProxyInstance(CaConfig.class.getClassLoader(), new Class<?>[] {CaConfig.class},
                (proxy, method, args) -> switch (method.getName()) {
                    case "rootSecret" -> rootSecret;
                    case "pluginSecret" -> pluginSecret;
                    default -> {
                        try {
                            yield method.invoke(config, args);
                        } catch (InvocationTargetException e) {
                            throw e.getCause();
                        }
                    }
                });
    }

    private void secret(String namespace, String name, Map<String, String> files) {
        Map<String, String> data = new HashMap<>();
        files.forEach((k, v) -> data.put(k, Base64.getEncoder().encodeToString(v.getBytes(StandardCharsets.US_ASCII))));
        client.secrets().inNamespace(namespace).resource(new SecretBuilder().withNewMetadata().withNamespace(namespace)
                .withName(name).endMetadata().withData(data).build()).create();
    }

    private static String decoded(Secret secret, String key) {
        return new String(Base64.getDecoder().decode(secret.getData().get(key)), StandardCharsets.US_ASCII);
    }

    /** An intermediate CA below {@code root}, as an operator's PKI would hand it over (no SPIFFE SAN). */
    private static Map<String, String> intermediate(Map<String, String> root) throws Exception {
        X509Certificate rootCert = Pem.decodeCertificates(root.get("ca-cert.pem")).getFirst();
        PrivateKey rootKey = Pem.decodePrivateKey(root.get("ca-key.pem"));
        KeyPair keys = CertificateRequests.newKeyPair();
        Instant now = Instant.now();
        var builder = new JcaX509v3CertificateBuilder(rootCert, BigInteger.valueOf(now.toEpochMilli()),
                Date.from(now.minusSeconds(60)), Date.from(now.plus(Duration.ofDays(30))),
                new X500Name("O=cluster.local,CN=Operator Intermediate"), keys.getPublic());
        builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(0));
        builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
        X509Certificate cert = new JcaX509CertificateConverter().getCertificate(
                builder.build(new JcaContentSignerBuilder("SHA256withECDSA").build(rootKey)));
        return Map.of("ca-cert.pem", Pem.encodeCertificate(cert), "ca-key.pem", Pem.encodePrivateKey(keys.getPrivate()));
    }
}
