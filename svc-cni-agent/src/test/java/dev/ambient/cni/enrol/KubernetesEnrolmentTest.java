package dev.ambient.cni.enrol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.cni.CniNode;
import dev.ambient.cni.MockKubernetes;
import dev.ambient.cni.TestNetworks;
import dev.ambient.cni.ZdsTestClient;
import dev.ambient.cni.pods.KubernetesPodSource;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The Kubernetes path against the fabric8 mock API server in CRUD mode (the same server
 * {@code @WithKubernetesTestServer(crud = true)} starts; started here directly because a
 * {@code @QuarkusTest} loads the protobuf classes in its own class loader, which clashes with the
 * plain tests of this module sharing the JVM). Pods already running (real
 * network namespaces whose address is the pod's status.podIP) join the mesh when their namespace
 * is labelled and leave it when the label goes; a restarted agent takes its pods over without
 * touching them.
 */
@Timeout(120)
class KubernetesEnrolmentTest {

    static final String NODE = "node-k";
    static TestNetworks nets;
    static MockKubernetes api;
    static Path dir;
    static KubernetesClient client;

    @BeforeAll
    static void pods() throws Exception {
        nets = new TestNetworks();
        nets.pod("cnit-k1", "10.249.3.2");
        nets.pod("cnit-k2", "10.249.3.3");
        nets.pod("cnit-k3", "10.249.3.4");
        api = new MockKubernetes("cnit-k8s");
        dir = api.dir;
        client = api.client;
    }

    @AfterAll
    static void cleanUp() {
        if (api != null) {
            api.close();
        }
        nets.close();
    }

    static Pod pod(String ns, String name, String uid, String ip, String node, Map<String, String> labels) {
        return new PodBuilder().withNewMetadata().withName(name).withNamespace(ns).withUid(uid).withLabels(labels)
                .endMetadata().withNewSpec().withNodeName(node).withServiceAccountName(name).addNewContainer()
                .withName("app").withImage("app").endContainer().endSpec().withNewStatus().withPhase("Running")
                .withPodIP(ip).endStatus().build();
    }

    CniNode agent() throws Exception {
        CniNode.Settings s = CniNode.Settings.of(NODE, dir).withResyncInterval(Duration.ofSeconds(1));
        return new CniNode(s, new KubernetesPodSource(client, NODE, false), new SimpleMeterRegistry()).start();
    }

    @Test
    void labellingANamespaceEnrolsItsRunningPodsAndUnlabellingRemovesThem() throws Exception {
        client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("shop").endMetadata().build())
                .create();
        // The API server assigns the uid.
        String uid = client.pods().resource(pod("shop", "cart", null, "10.249.3.2", NODE, Map.of("app", "cart")))
                .create().getMetadata().getUid();
        client.pods().resource(pod("shop", "optout", "uid-k2", "10.249.3.3", NODE,
                Map.of("istio.io/dataplane-mode", "none"))).create();
        // Another node's pod with an address that exists here: never this agent's business.
        client.pods().resource(pod("shop", "elsewhere", null, "10.249.3.4", "node-other", Map.of())).create();
        String pristine = TestNetworks.iptablesSave("cnit-k1");

        try (CniNode node = agent()) {
            waitFor(node.enroller()::sourceSynced);
            Thread.sleep(1500); // a resync or two: nothing may be enrolled yet
            assertTrue(node.enroller().enrolled().isEmpty());

            // Labelled while no ztunnel runs: nothing is redirected (nothing would listen on 15001/15006).
            label("shop", "ambient");
            waitFor(() -> node.enroller().enrolled().containsKey(uid));
            Thread.sleep(1500);
            assertEquals(pristine, TestNetworks.iptablesSave("cnit-k1"), "not captured before the ztunnel has it");

            // A ztunnel that refuses the pod: still not captured (and the agent keeps trying).
            try (ZdsTestClient refusing = ZdsTestClient.connect(node.zds().socketPath())
                    .autoAck(r -> r.hasAdd() ? "cannot enter the network namespace" : "")) {
                waitFor(() -> refusing.snapshots >= 1);
                Thread.sleep(1500);
                assertEquals(pristine, TestNetworks.iptablesSave("cnit-k1"), "not captured when the ztunnel refused");
            }

            ZdsTestClient ztunnel = ZdsTestClient.connect(node.zds().socketPath()).autoAck(r -> "");
            waitFor(() -> ztunnel.workloads.containsKey(uid));
            waitFor(() -> rules("cnit-k1"));
            assertEquals("net:[" + Files.getAttribute(TestNetworks.path("cnit-k1"), "unix:ino") + "]",
                    ztunnel.workloads.get(uid), "the ztunnel got the running pod's own netns");
            assertEquals(Map.of(uid, "shop/cart"), node.enroller().enrolled(), "opt-out and other node left alone");
            assertEquals("", TestNetworks.iptablesSave("cnit-k2"));
            assertEquals("", TestNetworks.iptablesSave("cnit-k3"));

            label("shop", null);
            waitFor(() -> !ztunnel.workloads.containsKey(uid));
            waitFor(() -> node.enroller().enrolled().isEmpty());
            assertEquals(pristine, TestNetworks.iptablesSave("cnit-k1"), "rules removed, netns as it was");

            label("shop", "ambient");
            waitFor(() -> ztunnel.workloads.containsKey(uid));
            waitFor(() -> rules("cnit-k1"));
            ztunnel.close();
        }

        // The agent restarts (its pods keep running, rules in place): the new one finds the pod by
        // IP and the reconnecting ztunnel gets it in the snapshot; nothing is re-created.
        String installed = TestNetworks.iptablesSave("cnit-k1");
        try (CniNode node = agent(); ZdsTestClient ztunnel = ZdsTestClient.connect(node.zds().socketPath())
                .autoAck(r -> "")) {
            waitFor(() -> ztunnel.snapshots >= 1);
            // The first snapshot already names the pod: the ztunnel never drops it on an agent restart.
            assertTrue(ztunnel.workloads.containsKey(uid));
            assertEquals(installed, TestNetworks.iptablesSave("cnit-k1"), "rules unchanged by the takeover");

            // The pod ends: it leaves the mesh.
            client.pods().inNamespace("shop").withName("cart").delete();
            waitFor(() -> !ztunnel.workloads.containsKey(uid));
            assertEquals(pristine, TestNetworks.iptablesSave("cnit-k1"));
            assertFalse(node.enroller().enrolled().containsKey(uid));
        }
    }

    static boolean rules(String ns) {
        try {
            return TestNetworks.iptablesSave(ns).contains("-A OUTPUT -j AMBIENT_OUTPUT");
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    void label(String ns, String value) {
        client.namespaces().withName(ns).edit(n -> {
            Namespace copy = new NamespaceBuilder(n).build();
            if (value == null) {
                copy.getMetadata().getLabels().remove("istio.io/dataplane-mode");
            } else {
                copy.getMetadata().getLabels().put("istio.io/dataplane-mode", value);
            }
            return copy;
        });
    }

    static void waitFor(BooleanSupplier c) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!c.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("not within 20 s");
            }
            Thread.sleep(50);
        }
    }
}
