package dev.ambient.cni.redirect;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.ambient.cni.TestNetworks;
import dev.ambient.net.NetworkNamespace;
import java.io.IOException;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Kubelet probes: a "node" namespace (cnit-hnode, 10.249.5.1) and an enrolled pod (cnit-hpod,
 * 10.249.5.2) with its application on 8080 and the in-pod rules, but no ztunnel listening. A
 * connection from a process of the node is captured (to 15006, refused here) until the node's
 * probe SNAT is in; then it reaches the application from 169.254.7.127.
 */
@Timeout(60)
class ProbeExemptionTest {

    static final String NODE = "cnit-hnode";
    static final String POD = "cnit-hpod";
    static TestNetworks nets;

    @BeforeAll
    static void network() throws Exception {
        nets = new TestNetworks();
        nets.add(NODE);
        nets.add(POD);
        nets.link(NODE, "10.249.5.1", POD, "10.249.5.2", "h");
        TestNetworks.sh("ip", "-n", POD, "route", "add", "default", "via", "10.249.5.1").check();
        // A node has a nat table of its own (kube-proxy, the CNI's masquerading): keep one here.
        TestNetworks.sh("ip", "netns", "exec", NODE, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s",
                "10.249.5.0/24", "!", "-d", "10.249.5.0/24", "-j", "MASQUERADE").check();
    }

    @AfterAll
    static void cleanUp() {
        nets.close();
    }

    @Test
    void probesFromTheNodeReachTheApplicationFromTheProbeSource() throws Exception {
        NetnsCommand command = new NetnsCommand(Duration.ofSeconds(10));
        InPodRedirection inPod = new InPodRedirection(RedirectSettings.defaults(), command);
        Path nodeNs = TestNetworks.path(NODE);
        HostProbeSnat snat = new HostProbeSnat(nodeNs, "169.254.7.127", command);

        BlockingQueue<String> sources = new LinkedBlockingQueue<>();
        ServerSocket app = NetworkNamespace.open(TestNetworks.path(POD)).call(() -> new ServerSocket(8080, 50,
                InetAddress.getByName("0.0.0.0")));
        Thread.ofPlatform().daemon().start(() -> {
            try (app) {
                while (true) {
                    try (Socket s = app.accept()) {
                        sources.add(s.getInetAddress().getHostAddress());
                    }
                }
            } catch (IOException e) {
                // closed
            }
        });
        String nodeBefore = TestNetworks.iptablesSave(NODE);
        inPod.install(TestNetworks.path(POD));
        try (NetworkNamespace node = NetworkNamespace.open(nodeNs)) {
            // Captured: nothing listens on 15006 in this pod, so the connection is refused.
            assertThrows(ConnectException.class, () -> probe(node));
            assertEquals(null, sources.poll(200, TimeUnit.MILLISECONDS));

            snat.add(List.of("10.249.5.2"));
            snat.add(List.of("10.249.5.2"));
            probe(node);
            assertEquals("169.254.7.127", sources.poll(5, TimeUnit.SECONDS), "the application answered the probe");

            snat.remove(List.of("10.249.5.2"));
            assertEquals(nodeBefore, TestNetworks.iptablesSave(NODE), "the node's nat table as it was");
            assertThrows(ConnectException.class, () -> probe(node));
        } finally {
            inPod.remove(TestNetworks.path(POD));
            app.close();
        }
    }

    private static void probe(NetworkNamespace node) throws Exception {
        try {
            node.call(() -> {
                try (Socket s = new Socket()) {
                    s.connect(new InetSocketAddress("10.249.5.2", 8080), 3000);
                }
                return null;
            });
        } catch (ConnectException e) {
            throw e;
        }
    }
}
