package dev.ambient.xds.discovery;

import static dev.ambient.auth.FakeTokenReviews.jwt;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.auth.FakeTokenReviews;
import dev.ambient.auth.FakeTokenReviews.Holder;
import dev.ambient.discovery.ResourceTypes;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import jakarta.inject.Inject;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * svc-xds as deployed: clients' tokens checked by TokenReview against the (mock) API server,
 * audience-bound, and a ztunnel's node taken from its bound token or its pod.
 */
@QuarkusTest
@TestProfile(KubernetesStreamAuthenticationTest.TokenReviews.class)
@WithKubernetesTestServer(crud = true, setup = FakeTokenReviews.class)
class KubernetesStreamAuthenticationTest {

    public static class TokenReviews implements QuarkusTestProfile {
        @Override
        public Set<Class<?>> getEnabledAlternatives() {
            return Set.of(MutableMeshModel.class);
        }

        @Override
        public Map<String, String> getConfigOverrides() {
            Map<String, String> m = new HashMap<>(new DiscoveryTestProfile().getConfigOverrides());
            m.put("xds.auth.mode", "kubernetes");
            return m;
        }
    }

    @Inject
    MutableMeshModel model;

    @Inject
    KubernetesClient client;

    @BeforeEach
    void world() {
        model.set(DeltaDiscoveryServiceTest.world());
    }

    static XdsTestClient ztunnel(String claimedNode, String token) {
        return new XdsTestClient(XdsTestClient.ztunnelNode(claimedNode), XdsTestClient.channel(), token, false, null);
    }

    @Test
    void aTokenOfAnotherAudienceOrNoJwtIsRefusedWithoutATokenReview() throws InterruptedException {
        String apiToken = FakeTokenReviews.register("xds-ztunnel-api-aud",
                new Holder("istio-system", "ztunnel", "ztunnel-a", "node-a", List.of("https://kubernetes.default.svc")));
        int before = FakeTokenReviews.allReviews();
        try (XdsTestClient other = ztunnel("node-a", apiToken); XdsTestClient garbage = ztunnel("node-a", "ztunnel-node-a")) {
            other.subscribe(ResourceTypes.WORKLOAD);
            garbage.subscribe(ResourceTypes.WORKLOAD);
            String wrongAudience = StreamAuthorizationTest.refusal(other);
            assertTrue(wrongAudience.contains("UNAUTHENTICATED") && wrongAudience.contains("not for audience istio-ca"),
                    wrongAudience);
            String notJwt = StreamAuthorizationTest.refusal(garbage);
            assertTrue(notJwt.contains("UNAUTHENTICATED") && notJwt.contains("not a JWT"), notJwt);
            assertTrue(other.responses.isEmpty() && garbage.responses.isEmpty());
        }
        assertEquals(before, FakeTokenReviews.allReviews());
    }

    @Test
    void aZtunnelStreamsAsTheNodeItsTokenIsBoundToAndNoOther() throws InterruptedException {
        String token = FakeTokenReviews.register("xds-ztunnel-a", new Holder("istio-system", "ztunnel", "ztunnel-a", "node-a"));
        try (XdsTestClient asB = ztunnel("node-b", token)) {
            asB.subscribe(ResourceTypes.WORKLOAD);
            String error = StreamAuthorizationTest.refusal(asB);
            assertTrue(error.contains("PERMISSION_DENIED") && error.contains("runs on node-a"), error);
        }
        for (int i = 0; i < 3; i++) {
            try (XdsTestClient asA = ztunnel("node-a", token)) {
                asA.subscribe(ResourceTypes.WORKLOAD);
                assertFalse(asA.nextAcked().getResourcesList().isEmpty());
            }
        }
        assertEquals(1, FakeTokenReviews.reviewsOf("xds-ztunnel-a"), "the token's answer is cached");
    }

    @Test
    void aTokenNamingOnlyItsPodGetsTheNodeOfThatPod() throws InterruptedException {
        client.pods().inNamespace("istio-system").resource(new PodBuilder()
                .withNewMetadata().withNamespace("istio-system").withName("ztunnel-c").endMetadata()
                .withNewSpec().withServiceAccountName("ztunnel").withNodeName("node-c")
                .addNewContainer().withName("ztunnel").withImage("ztunnel:1").endContainer().endSpec().build()).create();
        String token = FakeTokenReviews.register("xds-ztunnel-c", new Holder("istio-system", "ztunnel", "ztunnel-c", null));
        try (XdsTestClient asA = ztunnel("node-a", token); XdsTestClient asC = ztunnel("node-c", token)) {
            asA.subscribe(ResourceTypes.WORKLOAD);
            String error = StreamAuthorizationTest.refusal(asA);
            assertTrue(error.contains("runs on node-c"), error);
            asC.subscribe(ResourceTypes.WORKLOAD);
            assertFalse(asC.nextAcked().getResourcesList().isEmpty());
        }
    }
}
