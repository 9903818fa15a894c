package dev.ambient.ztunnel.inpod;

import dev.ambient.ztunnel.TestNodes;
import dev.ambient.ztunnel.ZtunnelNode;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** A ztunnel in in-pod mode inside this JVM, configured through its real keys, for the in-pod tests. */
final class InpodNode {

    private InpodNode() {
    }

    /**
     * @param config the standalone mesh file
     * @param zdsSocket the node agent's ZDS socket (played by the test)
     * @param extra further keys, overriding the defaults here
     */
    static ZtunnelNode start(Path config, Path zdsSocket, Path caDir, Map<String, String> extra) throws Exception {
        Map<String, String> p = new HashMap<>();
        p.put("ztunnel.node-name", "node-a");
        p.put("ztunnel.node-ip", "127.0.0.1");
        p.put("ztunnel.local-config", config.toString());
        p.put("ztunnel.identity.ca-dir", caDir.toString());
        p.put("ztunnel.ports.socks5", "0");
        p.put("ztunnel.ports.admin", "0");
        p.put("ztunnel.dataplane.threads", "2");
        p.put("ztunnel.inpod.enabled", "true");
        p.put("ztunnel.inpod.zds-socket", zdsSocket.toString());
        p.put("ztunnel.inpod.reconnect-initial-backoff", "50ms");
        p.put("ztunnel.inpod.reconnect-max-backoff", "500ms");
        p.put("ztunnel.inpod.drain-timeout", "2s");
        p.putAll(extra);
        return TestNodes.start(p);
    }

    /** Waits (15 s at most) until the certificates of the enrolled pods are valid, as readiness would. */
    static void awaitCertificates(ZtunnelNode n) throws InterruptedException {
        PodNetwork.await(() -> n.certificates().status().size() >= 2
                && n.certificates().status().stream().allMatch(s -> "valid".equals(s.state())),
                "certificates for the enrolled pods");
    }

    /** Writes the node's mesh file and waits until the node has read it again. */
    static void rewriteMesh(ZtunnelNode node, Path config, String yaml) throws Exception {
        long before = node.localConfig().orElseThrow().reloads();
        java.nio.file.Files.writeString(config, yaml);
        PodNetwork.await(() -> node.localConfig().orElseThrow().reloads() > before, "the mesh file reloaded");
    }

    /** Stops what an in-pod test started (any of it may be null) and removes its pods. */
    static void stopAll(ZtunnelNode node, AgentSide agent, Process server, List<String> pods) {
        if (node != null) {
            node.close();
        }
        if (agent != null) {
            agent.close();
        }
        if (server != null) {
            server.destroyForcibly();
        }
        PodNetwork.deleteAll(pods);
    }
}
