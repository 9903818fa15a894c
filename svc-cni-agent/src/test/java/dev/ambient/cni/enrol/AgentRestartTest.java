package dev.ambient.cni.enrol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The agent restarts while its pods keep running (real network namespaces cnit-r1/cnit-r2 whose
 * addresses are their podIPs, probe SNAT in a "node" namespace cnit-rnode). The ztunnel that
 * outlived it is told Keep, not Add, so it leaves the pods' listeners and connections alone; a
 * ztunnel that does not have a pod answers Keep with an error and gets Add. The node's probe SNAT
 * rules of a pod that left while no agent ran are gone after the restart, the others are there once.
 */
@Timeout(120)
class AgentRestartTest {

    static final String NODE = "node-r";
    static final String HOST = "cnit-rnode";
    static TestNetworks nets;
    static MockKubernetes api;
    static Path dir;
    static KubernetesClient client;

    @BeforeAll
    static void pods() throws Exception {
        nets = new TestNetworks();
        nets.pod("cnit-r1", "10.249.7.2");
        nets.pod("cnit-r2", "10.249.7.3");
        nets.add(HOST);
        // A node has a nat table of its own (kube-proxy, the CNI's masquerading): keep one here.
        TestNetworks.sh("ip", "netns", "exec", HOST, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s",
                "10.249.7.0/24", "!", "-d", "10.249.7.0/24", "-j", "MASQUERADE").check();
        api = new MockKubernetes("cnit-restart");
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

    CniNode agent() throws Exception {
        CniNode.Settings s = CniNode.Settings.of(NODE, dir).withResyncInterval(Duration.ofSeconds(1))
                .withProbeSnatIn(TestNetworks.path(HOST));
        return new CniNode(s, new KubernetesPodSource(client, NODE, false), new SimpleMeterRegistry()).start();
    }

    static String snat(String ip) {
        return "-A AMBIENT_POSTROUTING -d " + ip + "/32 -p tcp -m owner --socket-exists -j SNAT --to-source "
                + "169.254.7.127";
    }

    static long count(String text, String line) {
        return text.lines().filter(line::equals).count();
    }

    @Test
    void aRestartedAgentConfirmsServedPodsWithKeepAndClearsStaleProbeSnat() throws Exception {
        client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("stay")
                .addToLabels("istio.io/dataplane-mode", "ambient").endMetadata().build()).create();
        String uid1 = client.pods().resource(KubernetesEnrolmentTest.pod("stay", "one", null, "10.249.7.2", NODE,
                Map.of())).create().getMetadata().getUid();
        String uid2 = client.pods().resource(KubernetesEnrolmentTest.pod("stay", "two", null, "10.249.7.3", NODE,
                Map.of())).create().getMetadata().getUid();
        String hostBefore = TestNetworks.iptablesSave(HOST);

        Map<String, String> held;
        try (CniNode node = agent(); ZdsTestClient ztunnel = ZdsTestClient.connect(node.zds().socketPath())
                .autoAck(r -> "")) {
            KubernetesEnrolmentTest.waitFor(() -> ztunnel.workloads.containsKey(uid1)
                    && ztunnel.workloads.containsKey(uid2));
            KubernetesEnrolmentTest.waitFor(() -> KubernetesEnrolmentTest.rules("cnit-r1")
                    && KubernetesEnrolmentTest.rules("cnit-r2"));
            // Both enrolments finished (the probe SNAT is their last step, after both families' rules):
            // closing the agent earlier interrupts one and removes it.
            KubernetesEnrolmentTest.waitFor(() -> hostRules().contains(snat("10.249.7.2"))
                    && hostRules().contains(snat("10.249.7.3")));
            held = Map.copyOf(ztunnel.workloads);
        }
        String installed = TestNetworks.iptablesSave("cnit-r1");

        // While no agent runs, pod two ends (the runtime's DEL found no agent to tell).
        client.pods().inNamespace("stay").withName("two").delete();

        // The ztunnel outlived the agent: it still serves pod one and reconnects to the new agent.
        try (CniNode node = agent(); ZdsTestClient ztunnel = ZdsTestClient.connect(node.zds().socketPath())
                .holding(Map.of(uid1, held.get(uid1))).autoAck(r -> "")) {
            KubernetesEnrolmentTest.waitFor(() -> ztunnel.snapshots >= 1);
            List<String> requests = ztunnel.seen.stream().map(r -> r.request().getPayloadCase() + " "
                    + (r.fd().isPresent() ? "with fd" : "without fd")).toList();
            assertEquals(List.of("KEEP without fd", "SNAPSHOT_SENT without fd"), requests,
                    "a served pod is confirmed, not handed over again");
            assertEquals(ztunnel.seen.get(0).request().getKeep().getUid(), uid1);
            assertTrue(ztunnel.workloads.containsKey(uid1), "the ztunnel keeps serving pod one");
            assertEquals(installed, TestNetworks.iptablesSave("cnit-r1"), "rules unchanged by the takeover");

            String host = hostRules();
            assertEquals(1, count(host, snat("10.249.7.2")), "pod one's probe SNAT, once: " + host);
            assertEquals(0, count(host, snat("10.249.7.3")), "pod two left: its probe SNAT is stale: " + host);
            assertFalse(node.enroller().enrolled().containsKey(uid2));
        }

        // Both restarted: a ztunnel that has nothing answers Keep with an error and gets the pod's netns.
        try (CniNode node = agent(); ZdsTestClient ztunnel = ZdsTestClient.connect(node.zds().socketPath())
                .autoAck(r -> "")) {
            KubernetesEnrolmentTest.waitFor(() -> ztunnel.workloads.containsKey(uid1));
            List<String> requests = ztunnel.seen.stream().map(r -> r.request().getPayloadCase() + " "
                    + (r.fd().isPresent() ? "with fd" : "without fd")).toList();
            assertEquals(List.of("KEEP without fd", "ADD with fd"), requests.subList(0, 2));
            assertEquals(held.get(uid1), ztunnel.workloads.get(uid1), "the ztunnel got pod one's own netns");
            KubernetesEnrolmentTest.waitFor(() -> ztunnel.snapshots >= 1);
            assertEquals(1, count(hostRules(), snat("10.249.7.2")), "still once");

            // The last pod leaves: the node's nat table is as it was.
            client.pods().inNamespace("stay").withName("one").delete();
            KubernetesEnrolmentTest.waitFor(() -> !ztunnel.workloads.containsKey(uid1));
            KubernetesEnrolmentTest.waitFor(() -> node.enroller().enrolled().isEmpty());
            assertEquals(hostBefore, TestNetworks.iptablesSave(HOST), "the node's nat table as it was");
        }
    }

    static String hostRules() {
        try {
            return TestNetworks.iptablesSave(HOST);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
