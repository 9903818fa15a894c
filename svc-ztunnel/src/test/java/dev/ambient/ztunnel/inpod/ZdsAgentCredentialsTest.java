package dev.ambient.ztunnel.inpod;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ambient.proto.zds.AddWorkload;
import dev.ambient.proto.zds.WorkloadInfo;
import dev.ambient.proto.zds.WorkloadRequest;
import dev.ambient.zds.OtherUidPeer;
import dev.ambient.ztunnel.ZtunnelNode;
import io.micrometer.core.instrument.Counter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ztunnel believes only an agent of an allowed uid: an impostor listening at the ZDS path as
 * another uid (python's own SEQPACKET socket, uid 65534, shared-proto's {@code OtherUidPeer}) sends
 * an Add naming a pod, with a real pod namespace it chose; the ztunnel must say nothing to it, act
 * on nothing, and keep retrying until the real agent is back.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ZdsAgentCredentialsTest {

    static final String IP_S = "10.248.4.1";
    static final List<String> PODS = List.of("s");
    static final String MESH = """
            workloads:
            - name: pod-s
              namespace: default
              serviceAccount: sleep
              workloadIps: [10.248.4.1]
              node: node-a
              protocol: HBONE
            """;

    @TempDir
    static Path dir;
    static ZtunnelNode node;
    static AgentSide agent;

    @AfterAll
    static void stop() {
        InpodNode.stopAll(node, agent, null, PODS);
    }

    @Test
    void anImpostorAgentOfAnotherUidIsRefusedAndTheRealAgentServedWhenBack() throws Exception {
        assumeTrue(PodNetwork.usable() && OtherUidPeer.available(), "needs root, iptables, curl, setpriv and python3");
        PodNetwork.createPods(Map.of("s", IP_S), List.of());
        Path config = dir.resolve("mesh.yaml");
        Files.writeString(config, MESH);
        Path zds = Files.createDirectories(dir.resolve("run")).resolve("ztunnel.sock");
        byte[] add = WorkloadRequest.newBuilder().setAdd(AddWorkload.newBuilder().setUid("uid-s")
                .setWorkloadInfo(WorkloadInfo.newBuilder().setName("pod-s").setNamespace("default")
                        .setServiceAccount("sleep"))).build().toByteArray();

        java.util.Map<String, String> impostor;
        try (OtherUidPeer peer = OtherUidPeer.server(zds, add, PodNetwork.netnsPath("s"), 2, Duration.ofSeconds(40))) {
            peer.await("listening=true");
            node = InpodNode.start(config, zds, dir.resolve("ca"), Map.of());
            impostor = peer.report(); // two connections, or the time is up
        }
        assertEquals("2", impostor.get("accepted"), "it connects again later, as when no agent listens: "
                + impostor.get("output"));
        assertEquals("0", impostor.get("hellos"), "it said nothing to the impostor: " + impostor.get("output"));
        assertEquals("0", impostor.get("answers"), "it acted on nothing the impostor sent");
        assertEquals(List.of(), PodNetwork.ports("s"), "no listener in the namespace the impostor chose");
        ZdsClient client = node.zds().orElseThrow();
        assertFalse(client.connected());
        assertTrue(client.lastError().contains("uid 65534"), client.lastError());
        Counter refused = node.registry().find("ztunnel_zds_refused_total").tag("reason", "uid").counter();
        assertTrue(refused != null && refused.count() >= 2, "counted");

        // The real agent (root, this JVM) is back at the path: the ztunnel connects and serves its pod.
        agent = new AgentSide(zds);
        agent.acceptZtunnel();
        assertEquals("", agent.add("uid-s", "default", "pod-s", "sleep", PodNetwork.netnsPath("s")));
        assertEquals("", agent.snapshotSent());
        assertTrue(PodNetwork.ports("s").contains(15008), "pod s served: " + PodNetwork.ports("s"));
    }
}
