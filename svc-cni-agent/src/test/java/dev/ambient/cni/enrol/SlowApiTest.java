package dev.ambient.cni.enrol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.cni.CniNode;
import dev.ambient.cni.MockKubernetes;
import dev.ambient.cni.TestNetworks;
import dev.ambient.cni.ZdsTestClient;
import dev.ambient.cni.pods.KubernetesPodSource;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A CNI ADD whose pod is not in the informer cache yet makes the agent ask the API, and the API
 * is slow (the mock server holds the answer for 25 s). That lookup must not hold the enrol
 * thread: a running pod (real netns cnit-s1) labelled meanwhile is enrolled at once, and the ADD
 * itself fails within the lookup timeout with a clear reason (the kubelet retries), well inside
 * the plugin's own timeout.
 */
@Timeout(120)
class SlowApiTest {

    static final String NODE = "node-s";
    static TestNetworks nets;
    static MockKubernetes api;
    static Path dir;
    static KubernetesClient client;

    @BeforeAll
    static void start() throws Exception {
        nets = new TestNetworks();
        nets.pod("cnit-s1", "10.249.8.2");
        nets.pod("cnit-s2", "10.249.8.3");
        api = new MockKubernetes("cnit-slow");
        dir = api.dir;
        client = api.client;
        api.server.expect().get().delay(25, TimeUnit.SECONDS).withPath("/api/v1/namespaces/mesh/pods/late")
                .andReturn(200, KubernetesEnrolmentTest.pod("mesh", "late", "uid-late", "10.249.8.3", NODE, Map.of()))
                .always();
    }

    @AfterAll
    static void cleanUp() {
        if (api != null) {
            api.close();
        }
        nets.close();
    }

    @Test
    void aSlowApiLookupNeitherBlocksEnrolmentNorOutlastsThePlugin() throws Exception {
        client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("mesh")
                .addToLabels("istio.io/dataplane-mode", "ambient").endMetadata().build()).create();
        client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("shop").endMetadata().build())
                .create();
        String uid = client.pods().resource(KubernetesEnrolmentTest.pod("shop", "cart", null, "10.249.8.2", NODE,
                Map.of())).create().getMetadata().getUid();
        CniNode.Settings s = CniNode.Settings.of(NODE, dir).withResyncInterval(Duration.ofSeconds(30));
        try (CniNode node = new CniNode(s, new KubernetesPodSource(client, NODE, false, Duration.ofSeconds(2)),
                new SimpleMeterRegistry()).start(); ZdsTestClient ztunnel = ZdsTestClient.connect(
                        node.zds().socketPath()).autoAck(r -> "")) {
            KubernetesEnrolmentTest.waitFor(() -> ztunnel.snapshots >= 1);

            long t0 = System.nanoTime();
            CompletableFuture<CniAnswer> add = node.enroller().cni(new CniRequest("ADD", "mesh", "late", "uid-late",
                    "c1", TestNetworks.path("cnit-s2").toString(), List.of("10.249.8.3")));
            Thread.sleep(300); // the lookup is under way

            // Meanwhile a running pod's namespace is labelled: enrolled without waiting for that lookup.
            client.namespaces().withName("shop").edit(n -> new NamespaceBuilder(n).editMetadata()
                    .addToLabels("istio.io/dataplane-mode", "ambient").endMetadata().build());
            long t1 = System.nanoTime();
            KubernetesEnrolmentTest.waitFor(() -> ztunnel.workloads.containsKey(uid));
            KubernetesEnrolmentTest.waitFor(() -> KubernetesEnrolmentTest.rules("cnit-s1"));
            long enrolMs = (System.nanoTime() - t1) / 1_000_000;
            assertTrue(enrolMs < 1500, "the labelled pod waited " + enrolMs + " ms behind the API lookup");

            CniAnswer a = add.get(20, TimeUnit.SECONDS);
            long addMs = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(CniAnswer.Status.ERROR, a.status(), a.message());
            assertTrue(a.message().contains("Kubernetes API"), a.message());
            assertTrue(addMs < 4000, "the ADD answered after " + addMs + " ms, the lookup timeout is 2 s");
            assertEquals("", TestNetworks.iptablesSave("cnit-s2"), "the pod of the failed ADD is not redirected");
        }
    }
}
