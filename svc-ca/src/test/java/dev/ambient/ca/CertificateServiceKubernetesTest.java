package dev.ambient.ca;

import static dev.ambient.ca.CaClient.refused;
import static dev.ambient.auth.FakeTokenReviews.jwt;
import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.auth.FakeTokenReviews;
import dev.ambient.auth.FakeTokenReviews.Holder;
import dev.ambient.identity.Pem;
import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.ca.TrustBundleRequest;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.grpc.Status;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import jakarta.inject.Inject;
import java.nio.charset.StandardCharsets;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The CA against the mock API server: real CSRs over real gRPC, tokens checked by TokenReview,
 * pods and Secrets and ConfigMaps in the CRUD store.
 */
@QuarkusTest
@TestProfile(KubernetesModeProfile.class)
@WithKubernetesTestServer(crud = true, setup = FakeTokenReviews.class)
class CertificateServiceKubernetesTest {

    static final String TD = "cluster.local";
    static final SpiffeId SLEEP = new SpiffeId(TD, "default", "sleep");
    static final SpiffeId HTTPBIN = new SpiffeId(TD, "default", "httpbin");
    static final SpiffeId REVIEWS = new SpiffeId(TD, "shop", "reviews");
    static CaClient ca;

    @Inject
    KubernetesClient client;

    @BeforeAll
    static void connect() {
        ca = new CaClient(CertificateServiceKubernetesTest::rootFile);
        FakeTokenReviews.register("sleep-token", new Holder("default", "sleep", "sleep-1", "node-a"));
        FakeTokenReviews.register("sleep-cached", new Holder("default", "sleep", "sleep-1", "node-a"));
        FakeTokenReviews.register("ztunnel-a", new Holder("istio-system", "ztunnel", "ztunnel-a", "node-a"));
        // an older cluster: the bound token names the pod but not the node
        FakeTokenReviews.register("ztunnel-a-podonly", new Holder("istio-system", "ztunnel", "ztunnel-a", null));
        FakeTokenReviews.register("legacy-ztunnel", new Holder("istio-system", "ztunnel", null, null));
        FakeTokenReviews.register("etcd-down", FakeTokenReviews.OUTAGE);
    }

    @AfterAll
    static void disconnect() throws InterruptedException {
        ca.close();
    }

    @BeforeEach
    void rootIsLoaded() {
        CaClient.await("the CA is ready", () -> given().get("/healthz/ready").statusCode() == 200);
    }

    @Test
    void workloadGetsItsOwnIdentityAndTheChainVerifiesToTheRootInTheSecret() throws Exception {
        List<X509Certificate> chain = ca.sign(jwt("sleep-token"), SLEEP, 0, Map.of());

        assertEquals(2, chain.size(), "leaf and root");
        X509Certificate leaf = chain.getFirst();
        assertEquals(SLEEP, SpiffeId.fromCertificate(leaf));
        X509Certificate root = secretRoot();
        assertEquals(root, chain.getLast(), "the chain ends in the root kept in the Secret");
        CaClient.verifies(chain, root);
        Duration lifetime = Duration.between(leaf.getNotBefore().toInstant(), leaf.getNotAfter().toInstant());
        assertEquals(Duration.ofHours(24).plusMinutes(1), lifetime, "24h default, backdated a minute");
    }

    @Test
    void longRequestsAreCutToTheMaximumLifetime() {
        X509Certificate leaf = ca.sign(jwt("sleep-token"), SLEEP, Duration.ofDays(365).toSeconds(), Map.of()).getFirst();
        assertEquals(Duration.ofHours(48).plusMinutes(1),
                Duration.between(leaf.getNotBefore().toInstant(), leaf.getNotAfter().toInstant()));
        X509Certificate shortLived = ca.sign(jwt("sleep-token"), SLEEP, 3600, Map.of()).getFirst();
        assertEquals(Duration.ofHours(1).plusMinutes(1),
                Duration.between(shortLived.getNotBefore().toInstant(), shortLived.getNotAfter().toInstant()));
    }

    @Test
    void workloadAskingForAnotherIdentityIsRefusedWithTheReason() {
        String why = refused(Status.Code.PERMISSION_DENIED, () -> ca.sign(jwt("sleep-token"), HTTPBIN, 0, Map.of()));
        assertTrue(why.contains("may get only its own identity spiffe://cluster.local/ns/default/sa/sleep"), why);
        assertTrue(why.contains("not spiffe://cluster.local/ns/default/sa/httpbin"), why);

        String otherDomain = refused(Status.Code.PERMISSION_DENIED,
                () -> ca.sign(jwt("sleep-token"), new SpiffeId("evil.example", "default", "sleep"), 0, Map.of()));
        assertTrue(otherDomain.contains("this CA signs only for cluster.local"), otherDomain);
    }

    @Test
    void workloadMayNotImpersonate() {
        pod("default", "httpbin-1", "httpbin", "node-a");
        String why = refused(Status.Code.PERMISSION_DENIED,
                () -> ca.sign(jwt("sleep-token"), HTTPBIN, 0, impersonating(HTTPBIN, "httpbin-1")));
        assertTrue(why.contains("only a ztunnel (istio-system/ztunnel) may"), why);
    }

    @Test
    void ztunnelGetsIdentitiesOfPodsOnItsNodeOnly() throws Exception {
        pod("default", "httpbin-1", "httpbin", "node-a");
        pod("default", "httpbin-2", "httpbin", "node-b");

        List<X509Certificate> chain = ca.sign(jwt("ztunnel-a"), HTTPBIN, 0, impersonating(HTTPBIN, "httpbin-1"));
        assertEquals(HTTPBIN, SpiffeId.fromCertificate(chain.getFirst()));
        CaClient.verifies(chain, secretRoot());

        String why = refused(Status.Code.PERMISSION_DENIED,
                () -> ca.sign(jwt("ztunnel-a"), HTTPBIN, 0, impersonating(HTTPBIN, "httpbin-2")));
        assertTrue(why.contains("pod default/httpbin-2 is scheduled on node-b, not node-a"), why);
    }

    @Test
    void ztunnelMayAskForItsOwnIdentityWithoutNamingAPod() {
        SpiffeId ztunnel = new SpiffeId(TD, "istio-system", "ztunnel");
        ca.sign(jwt("ztunnel-a"), ztunnel, 0, Map.of());
        ca.sign(jwt("ztunnel-a"), ztunnel, 0, Map.of("impersonated-identity", ztunnel.uri()));
    }

    @Test
    void ztunnelWhoseTokenNamesOnlyItsPodIsPlacedByThatPod() {
        pod("istio-system", "ztunnel-a", "ztunnel", "node-a");
        pod("default", "httpbin-1", "httpbin", "node-a");
        pod("default", "httpbin-2", "httpbin", "node-b");

        ca.sign(jwt("ztunnel-a-podonly"), HTTPBIN, 0, impersonating(HTTPBIN, "httpbin-1"));
        String why = refused(Status.Code.PERMISSION_DENIED,
                () -> ca.sign(jwt("ztunnel-a-podonly"), HTTPBIN, 0, impersonating(HTTPBIN, "httpbin-2")));
        assertTrue(why.contains("is scheduled on node-b, not node-a"), why);
        String unbound = refused(Status.Code.PERMISSION_DENIED,
                () -> ca.sign(jwt("legacy-ztunnel"), HTTPBIN, 0, impersonating(HTTPBIN, "httpbin-1")));
        assertTrue(unbound.contains("its token is not bound to a pod"), unbound);
    }

    @Test
    void ztunnelIsRefusedAnIdentityThePodDoesNotHave() {
        pod("default", "httpbin-1", "httpbin", "node-a");
        String wrongAccount = refused(Status.Code.PERMISSION_DENIED,
                () -> ca.sign(jwt("ztunnel-a"), SLEEP, 0, impersonating(SLEEP, "httpbin-1")));
        assertTrue(wrongAccount.contains("runs as service account httpbin"), wrongAccount);
        String missing = refused(Status.Code.PERMISSION_DENIED,
                () -> ca.sign(jwt("ztunnel-a"), HTTPBIN, 0, impersonating(HTTPBIN, "no-such-pod")));
        assertTrue(missing.contains("pod default/no-such-pod does not exist"), missing);
        String mismatch = refused(Status.Code.INVALID_ARGUMENT,
                () -> ca.sign(jwt("ztunnel-a"), HTTPBIN, 0, impersonating(SLEEP, "httpbin-1")));
        assertTrue(mismatch.contains("but metadata impersonated-identity names"), mismatch);
        String noPod = refused(Status.Code.INVALID_ARGUMENT,
                () -> ca.sign(jwt("ztunnel-a"), HTTPBIN, 0, Map.of("impersonated-identity", HTTPBIN.uri())));
        assertTrue(noPod.contains("needs metadata pod-name and pod-namespace"), noPod);
    }

    @Test
    void badCsrsGetInvalidArgumentSayingWhy() throws Exception {
        String twoSans = refused(Status.Code.INVALID_ARGUMENT, () -> ca.send(jwt("sleep-token"),
                uncheckedTwoSans(), 0, Map.of()));
        assertTrue(twoSans.contains("exactly one SAN, found 2"), twoSans);
        String garbage = refused(Status.Code.INVALID_ARGUMENT, () -> ca.send(jwt("sleep-token"),
                "-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n", 0, Map.of()));
        assertTrue(garbage.startsWith("bad CSR"), garbage);
        String empty = refused(Status.Code.INVALID_ARGUMENT, () -> ca.send(jwt("sleep-token"), "", 0, Map.of()));
        assertTrue(empty.contains("no CSR"), empty);
        String notSpiffe = refused(Status.Code.INVALID_ARGUMENT, () -> ca.send(jwt("sleep-token"),
                uncheckedSingleSan("https://example.com/ns/default/sa/sleep"), 0, Map.of()));
        assertTrue(notSpiffe.contains("not a workload SPIFFE id"), notSpiffe);
        String negative = refused(Status.Code.INVALID_ARGUMENT, () -> ca.sign(jwt("sleep-token"), SLEEP, -5, Map.of()));
        assertTrue(negative.contains("must not be negative"), negative);
        // and the service is still there
        ca.sign(jwt("sleep-token"), SLEEP, 0, Map.of());
    }

    @Test
    void callersWithoutAValidTokenAreUnauthenticated() {
        String none = refused(Status.Code.UNAUTHENTICATED, () -> ca.sign(null, SLEEP, 0, Map.of()));
        assertTrue(none.contains("no token"), none);
        String unknown = refused(Status.Code.UNAUTHENTICATED, () -> ca.sign(jwt("stolen-or-expired"), SLEEP, 0, Map.of()));
        assertTrue(unknown.contains("rejected by the Kubernetes API: invalid bearer token"), unknown);
    }

    @Test
    void anApiOutageIsUnavailableNotACrash() {
        String why = refused(Status.Code.UNAVAILABLE, () -> ca.sign(jwt("etcd-down"), SLEEP, 0, Map.of()));
        assertTrue(why.contains("did not answer the TokenReview (HTTP 503"), why);
        assertEquals(1, ca.stub(jwt("sleep-token")).getTrustBundle(TrustBundleRequest.getDefaultInstance()).getRootsCount(),
                "the loaded root is still served");
        ca.sign(jwt("sleep-token"), SLEEP, 0, Map.of());
    }

    @Test
    void aBurstWithOneTokenCostsOneTokenReview() {
        for (int i = 0; i < 5; i++) {
            ca.sign(jwt("sleep-cached"), SLEEP, 0, Map.of());
        }
        assertEquals(1, FakeTokenReviews.reviewsOf("sleep-cached"));
    }

    @Test
    void trustBundleIsServedAndPublishedToAmbientNamespaces() {
        X509Certificate root = secretRoot();
        var bundle = ca.stub(jwt("sleep-token")).getTrustBundle(TrustBundleRequest.getDefaultInstance());
        assertEquals(List.of(root), Pem.decodeCertificates(bundle.getRoots(0)));

        client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("shop")
                .addToLabels("istio.io/dataplane-mode", "ambient").endMetadata().build()).create();
        client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("legacy").endMetadata().build())
                .create();

        CaClient.await("the bundle appears in namespace shop", () -> bundleIn("shop") != null);
        assertEquals(List.of(root), Pem.decodeCertificates(bundleIn("shop").getData().get("root-cert.pem")));
        CaClient.await("the bundle appears in the system namespace", () -> bundleIn("istio-system") != null);
        assertEquals(null, bundleIn("legacy"), "not enrolled in the mesh: no bundle");

        // a namespace that joins the mesh later gets it too
        client.namespaces().withName("legacy").edit(ns -> new NamespaceBuilder(ns).editMetadata()
                .addToLabels("istio.io/dataplane-mode", "ambient").endMetadata().build());
        CaClient.await("the bundle appears in namespace legacy once labelled", () -> bundleIn("legacy") != null);
    }

    @Test
    void metricsCountIssuancesAndRefusals() {
        double csrs = MetricsScrape.value("citadel_server_csr_count_total");
        double issued = MetricsScrape.value("citadel_server_success_cert_issuance_count_total");
        double denied = MetricsScrape.value("citadel_server_csr_refused_count_total", "reason=\"permission_denied\"");
        double unauthenticated = MetricsScrape.value("citadel_server_authentication_failure_count_total");
        double parsing = MetricsScrape.value("citadel_server_csr_parsing_err_count_total");

        ca.sign(jwt("sleep-token"), SLEEP, 0, Map.of());
        refused(Status.Code.PERMISSION_DENIED, () -> ca.sign(jwt("sleep-token"), HTTPBIN, 0, Map.of()));
        refused(Status.Code.UNAUTHENTICATED, () -> ca.sign(null, SLEEP, 0, Map.of()));
        refused(Status.Code.INVALID_ARGUMENT, () -> ca.send(jwt("sleep-token"), "garbage", 0, Map.of()));

        assertEquals(csrs + 4, MetricsScrape.value("citadel_server_csr_count_total"));
        assertEquals(issued + 1, MetricsScrape.value("citadel_server_success_cert_issuance_count_total"));
        assertEquals(denied + 1, MetricsScrape.value("citadel_server_csr_refused_count_total", "reason=\"permission_denied\""));
        assertEquals(unauthenticated + 1, MetricsScrape.value("citadel_server_authentication_failure_count_total"));
        assertEquals(parsing + 1, MetricsScrape.value("citadel_server_csr_parsing_err_count_total"));
        assertTrue(MetricsScrape.value("citadel_server_root_cert_expiry_timestamp") > System.currentTimeMillis() / 1000.0);
    }

    @Test
    void tokensOfOtherAudiencesOrNotJwtsAreRefusedAndCostNoTokenReview() {
        int before = FakeTokenReviews.allReviews();
        // a valid token of the workload, minted for the API server (its default audience), replayed to the CA
        String apiToken = FakeTokenReviews.register("sleep-api-token",
                new Holder("default", "sleep", "sleep-1", "node-a", List.of("https://kubernetes.default.svc")));
        String other = refused(Status.Code.UNAUTHENTICATED, () -> ca.sign(apiToken, SLEEP, 0, Map.of()));
        assertTrue(other.contains("not for audience istio-ca") && other.contains("kubernetes.default.svc"), other);
        String notJwt = refused(Status.Code.UNAUTHENTICATED, () -> ca.sign("sleep-token", SLEEP, 0, Map.of()));
        assertTrue(notJwt.contains("not a JWT"), notJwt);
        assertEquals(before, FakeTokenReviews.allReviews(), "refused before any TokenReview");

        // claims that lie about the audience: the TokenReview names istio-ca and the API server says no
        String forged = FakeTokenReviews.jwt("sleep-forged-aud");
        FakeTokenReviews.TOKENS.put(forged, new Holder("default", "sleep", "sleep-1", "node-a", List.of("vault")));
        String lie = refused(Status.Code.UNAUTHENTICATED, () -> ca.sign(forged, SLEEP, 0, Map.of()));
        assertTrue(lie.contains("invalid for the target audiences [istio-ca]"), lie);
        // and a caller with the right token still gets its certificate
        ca.sign(jwt("sleep-token"), SLEEP, 0, Map.of());
    }

    @Test
    void theTrustBundleIsServedToAuthenticatedCallersOnly() {
        String none = refused(Status.Code.UNAUTHENTICATED,
                () -> ca.stub(null).getTrustBundle(TrustBundleRequest.getDefaultInstance()));
        assertTrue(none.contains("no token"), none);
        assertEquals(1, ca.stub(jwt("sleep-token")).getTrustBundle(TrustBundleRequest.getDefaultInstance()).getRootsCount());
    }

    @Test
    void svcXdsGetsAServingCertificateForItsServiceNamesAndNobodyElseGetsAnyName() throws Exception {
        String xds = FakeTokenReviews.register("xds-token", new Holder("istio-system", "xds", "xds-1", "node-a"));
        List<String> names = List.of("xds.istio-system.svc", "xds.istio-system.svc.cluster.local");
        List<X509Certificate> chain = ca.send(xds, dev.ambient.identity.CertificateRequests.createServerPem(
                CaClient.keys(), names), 0, Map.of());
        X509Certificate leaf = chain.getFirst();
        assertEquals(names, dev.ambient.identity.ServingCertificate.dnsNames(leaf));
        assertEquals(List.of("1.3.6.1.5.5.7.3.1"), leaf.getExtendedKeyUsage(), "serverAuth only");
        CaClient.verifies(chain, secretRoot());
        assertTrue(Duration.between(leaf.getNotBefore().toInstant(), leaf.getNotAfter().toInstant())
                .compareTo(Duration.ofHours(12).plusMinutes(1)) <= 0, "at most ca.tls.certificate-lifetime");

        String caName = refused(Status.Code.PERMISSION_DENIED, () -> ca.send(xds,
                dev.ambient.identity.CertificateRequests.createServerPem(CaClient.keys(), List.of("ca.istio-system.svc")),
                0, Map.of()));
        assertTrue(caName.contains("not ca.istio-system.svc"), caName);
        String workload = refused(Status.Code.PERMISSION_DENIED, () -> ca.send(jwt("sleep-token"),
                dev.ambient.identity.CertificateRequests.createServerPem(CaClient.keys(), names), 0, Map.of()));
        assertTrue(workload.contains("may not get a serving certificate"), workload);
    }

    @Test
    void aFloodOfBogusTokensCostsLittleAndALegitimateCsrIsAnsweredPromptly() throws Exception {
        double busy = MetricsScrape.value("citadel_server_csr_refused_count_total", "reason=\"busy\"");
        FakeTokenReviews.unknownTokenDelayMillis = 100; // a slow API server
        int reviewsBefore = FakeTokenReviews.allReviews();
        List<com.google.common.util.concurrent.ListenableFuture<?>> flood = new java.util.ArrayList<>();
        String csr = dev.ambient.identity.CertificateRequests.createPem(CaClient.keys(), SLEEP);
        Duration took;
        try (CaClient legit = CaClient.from("127.0.0.2", CertificateServiceKubernetesTest::rootFile)) {
            for (int i = 0; i < 300; i++) { // garbage: never reaches the API server
                flood.add(ca.futureStub("garbage-" + i).createCertificate(
                        dev.ambient.proto.ca.CertificateRequest.newBuilder().setCsr(csr).build()));
            }
            for (int i = 0; i < 300; i++) { // well-formed tokens for our audience, each new, none valid
                flood.add(ca.futureStub(jwt("bogus-" + i)).createCertificate(
                        dev.ambient.proto.ca.CertificateRequest.newBuilder().setCsr(csr).build()));
            }
            // meanwhile a pod elsewhere with a token the CA has not seen yet
            String fresh = FakeTokenReviews.register("sleep-during-flood", new Holder("default", "sleep", "sleep-2", "node-a"));
            long start = System.nanoTime();
            legit.sign(fresh, SLEEP, 0, Map.of());
            took = Duration.ofNanos(System.nanoTime() - start);
            assertTrue(took.compareTo(Duration.ofSeconds(5)) < 0, "the legitimate CSR took " + took);

            int refusedCalls = 0;
            for (var f : flood) {
                try {
                    f.get(60, java.util.concurrent.TimeUnit.SECONDS);
                } catch (java.util.concurrent.ExecutionException e) {
                    var code = io.grpc.Status.fromThrowable(e.getCause()).getCode();
                    assertTrue(code == Status.Code.UNAUTHENTICATED || code == Status.Code.UNAVAILABLE, code.toString());
                    refusedCalls++;
                }
            }
            assertEquals(600, refusedCalls, "no bogus token got a certificate");
        } finally {
            FakeTokenReviews.unknownTokenDelayMillis = 0;
        }
        int reviews = FakeTokenReviews.allReviews() - reviewsBefore;
        System.out.printf("flood: 600 bogus calls cost %d TokenReviews; the legitimate CSR took %d ms%n", reviews,
                took.toMillis());
        assertTrue(reviews <= 100, "600 bogus calls cost " + reviews + " TokenReviews");
        assertTrue(MetricsScrape.value("citadel_server_csr_refused_count_total", "reason=\"busy\"") > busy,
                "refusals for too many checks at once are counted");
        ca.sign(jwt("sleep-token"), SLEEP, 0, Map.of());
    }

    @Test
    void plaintextClientsAreRefused() {
        double csrs = MetricsScrape.value("citadel_server_csr_count_total");
        var plain = io.grpc.ManagedChannelBuilder.forAddress("127.0.0.1", CaClient.GRPC_TEST_PORT).usePlaintext().build();
        try {
            io.grpc.StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(
                    io.grpc.StatusRuntimeException.class, () -> dev.ambient.proto.ca.CertificateServiceGrpc
                            .newBlockingStub(plain).withDeadlineAfter(10, java.util.concurrent.TimeUnit.SECONDS)
                            .getTrustBundle(TrustBundleRequest.getDefaultInstance()));
            assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.getStatus().toString());
        } finally {
            plain.shutdownNow();
        }
        assertEquals(csrs, MetricsScrape.value("citadel_server_csr_count_total"), "nothing was served");
    }

    @Test
    void readinessSaysWhereTheRootCameFrom() {
        given().get("/healthz/ready").then().statusCode(200)
                .body("checks.find { it.name == 'root-of-trust' }.data.source", equalTo("Secret istio-system/istio-ca-secret"));
    }

    // ---------------------------------------------------------------------------------------

    private X509Certificate secretRoot() {
        return secretRoot(client);
    }

    static X509Certificate secretRoot(KubernetesClient client) {
        Secret secret = client.secrets().inNamespace("istio-system").withName("istio-ca-secret").get();
        String pem = new String(Base64.getDecoder().decode(secret.getData().get("ca-cert.pem")), StandardCharsets.US_ASCII);
        return Pem.decodeCertificates(pem).getFirst();
    }

    /** The root as a proxy has it: the Secret's root in a file (the istio-ca-root-cert ConfigMap, mounted). */
    static java.nio.file.Path rootFile() {
        KubernetesClient api = io.quarkus.arc.Arc.container().instance(KubernetesClient.class).get();
        CaClient.await("the CA has created its root Secret",
                () -> api.secrets().inNamespace("istio-system").withName("istio-ca-secret").get() != null);
        try {
            return java.nio.file.Files.writeString(java.nio.file.Path.of("target/kubernetes-test-root-cert.pem"),
                    Pem.encodeCertificate(secretRoot(api)));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private ConfigMap bundleIn(String namespace) {
        return client.configMaps().inNamespace(namespace).withName("istio-ca-root-cert").get();
    }

    private void pod(String namespace, String name, String serviceAccount, String node) {
        client.pods().inNamespace(namespace).resource(new PodBuilder()
                .withNewMetadata().withNamespace(namespace).withName(name).endMetadata()
                .withNewSpec().withServiceAccountName(serviceAccount).withNodeName(node)
                    .addNewContainer().withName("app").withImage("app:1").endContainer()
                .endSpec().build()).createOr(existing -> existing.update());
    }

    private static Map<String, String> impersonating(SpiffeId id, String podName) {
        return Map.of("impersonated-identity", id.uri(), "pod-name", podName, "pod-namespace", id.namespace());
    }

    private static String uncheckedTwoSans() {
        try {
            return Csrs.withTwoSans(SLEEP.uri(), HTTPBIN.uri());
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static String uncheckedSingleSan(String uri) {
        try {
            return Csrs.withSans(uri);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
