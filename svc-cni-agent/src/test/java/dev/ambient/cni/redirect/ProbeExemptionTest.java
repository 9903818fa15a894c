package dev.ambient.cni.redirect;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
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
 * Kubelet probes: a "node" namespace (cnit-hnode, 10.249.5.1, fd00:249:5::1) and an enrolled pod
 * (cnit-hpod, 10.249.5.2, fd00:249:5::2) with its application on 8080 and the in-pod rules. IPv4:
 * no ztunnel listens; a connection from a process of the node is captured (to 15006, refused here)
 * until the node's probe SNAT is in; then it reaches the application from 169.254.7.127. IPv6: a
 * "ztunnel" listens on [::]:15006, and a client pod (cnit-hcli, fd00:249:6::2) reaches the pod
 * through the node, which forwards: the node's own connection goes to the application from the
 * IPv6 probe source, the client's is still captured.
 */
@Timeout(60)
class ProbeExemptionTest {

    static final String NODE = "cnit-hnode";
    static final String POD = "cnit-hpod";
    static final String CLIENT = "cnit-hcli";
    static final String POD_IP6 = "fd00:249:5::2";
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
        // Dual-stack: IPv6 on the same link (nodad: usable at once), a client pod behind the node,
        // and the node's IPv6 nat table of its own (kube-proxy's, in a dual-stack cluster).
        nets.add(CLIENT);
        nets.link(NODE, "10.249.6.1", CLIENT, "10.249.6.2", "k");
        v6(NODE, "fd00:249:5::1", "cnitha");
        v6(POD, POD_IP6, "cnithb");
        v6(NODE, "fd00:249:6::1", "cnitka");
        v6(CLIENT, "fd00:249:6::2", "cnitkb");
        TestNetworks.sh("ip", "-n", POD, "-6", "route", "add", "default", "via", "fd00:249:5::1").check();
        TestNetworks.sh("ip", "-n", CLIENT, "-6", "route", "add", "default", "via", "fd00:249:6::1").check();
        TestNetworks.sh("ip", "netns", "exec", NODE, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1").check();
        TestNetworks.sh("ip", "netns", "exec", NODE, "ip6tables", "-t", "nat", "-A", "POSTROUTING", "-s",
                "fd00:249:5::/64", "!", "-d", "fd00:249:5::/64", "-j", "MASQUERADE").check();
    }

    static void v6(String ns, String ip, String dev) throws IOException {
        TestNetworks.sh("ip", "-n", ns, "addr", "add", ip + "/64", "dev", dev, "nodad").check();
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
        HostProbeSnat snat = new HostProbeSnat(nodeNs, "169.254.7.127", RedirectSettings.PROBE_SOURCE_IPV6, command);

        BlockingQueue<InetAddress> sources = new LinkedBlockingQueue<>();
        ServerSocket app = listen(8080, sources);
        String nodeBefore = TestNetworks.iptablesSave(NODE);
        inPod.install(TestNetworks.path(POD));
        try (NetworkNamespace node = NetworkNamespace.open(nodeNs)) {
            // Captured: nothing listens on 15006 in this pod, so the connection is refused.
            assertThrows(ConnectException.class, () -> connect(node, "10.249.5.2"));
            assertEquals(null, sources.poll(200, TimeUnit.MILLISECONDS));

            snat.add(List.of("10.249.5.2"));
            snat.add(List.of("10.249.5.2"));
            connect(node, "10.249.5.2");
            assertEquals(InetAddress.getByName("169.254.7.127"), sources.poll(5, TimeUnit.SECONDS),
                    "the application answered the probe");

            snat.remove(List.of("10.249.5.2"));
            assertEquals(nodeBefore, TestNetworks.iptablesSave(NODE), "the node's nat table as it was");
            assertThrows(ConnectException.class, () -> connect(node, "10.249.5.2"));
        } finally {
            inPod.remove(TestNetworks.path(POD));
            app.close();
        }
    }

    @Test
    void ipv6ProbesFromTheNodeReachTheApplicationFromTheIpv6ProbeSourceWhileOtherClientsAreCaptured()
            throws Exception {
        NetnsCommand command = new NetnsCommand(Duration.ofSeconds(10));
        InPodRedirection inPod = new InPodRedirection(RedirectSettings.defaults(), command);
        Path nodeNs = TestNetworks.path(NODE);
        HostProbeSnat snat = new HostProbeSnat(nodeNs, "169.254.7.127", RedirectSettings.PROBE_SOURCE_IPV6, command);
        InetAddress probeSource = InetAddress.getByName(RedirectSettings.PROBE_SOURCE_IPV6);
        List<String> podIps = List.of("10.249.5.2", POD_IP6);

        BlockingQueue<InetAddress> atApp = new LinkedBlockingQueue<>();
        BlockingQueue<InetAddress> atZtunnel = new LinkedBlockingQueue<>();
        ServerSocket app = listen(8080, atApp);
        ServerSocket ztunnel = listen(15006, atZtunnel);
        String nodeBefore4 = TestNetworks.iptablesSave(NODE);
        String nodeBefore6 = TestNetworks.ip6tablesSave(NODE);
        inPod.install(TestNetworks.path(POD));
        try (NetworkNamespace node = NetworkNamespace.open(nodeNs);
                NetworkNamespace client = NetworkNamespace.open(TestNetworks.path(CLIENT))) {
            // Without the node's SNAT the probe is captured like any inbound connection.
            connect(node, POD_IP6);
            assertEquals(InetAddress.getByName("fd00:249:5::1"), atZtunnel.poll(5, TimeUnit.SECONDS));
            assertNull(atApp.poll(200, TimeUnit.MILLISECONDS));

            snat.add(podIps);
            snat.add(podIps);
            String rule6 = "-A AMBIENT_POSTROUTING -d fd00:249:5::2/128 -p tcp -m owner --socket-exists -j SNAT"
                    + " --to-source " + RedirectSettings.PROBE_SOURCE_IPV6;
            assertEquals(1, TestNetworks.ip6tablesSave(NODE).lines().filter(rule6::equals).count(),
                    TestNetworks.ip6tablesSave(NODE));
            connect(node, POD_IP6);
            assertEquals(probeSource, atApp.poll(5, TimeUnit.SECONDS), "the application answered the IPv6 probe");
            assertNull(atZtunnel.poll(200, TimeUnit.MILLISECONDS));

            // A client the node only forwards keeps its address and is still captured.
            connect(client, POD_IP6);
            assertEquals(InetAddress.getByName("fd00:249:6::2"), atZtunnel.poll(5, TimeUnit.SECONDS));
            assertNull(atApp.poll(200, TimeUnit.MILLISECONDS));

            snat.remove(podIps);
            assertEquals(nodeBefore6, TestNetworks.ip6tablesSave(NODE), "the node's IPv6 nat table as it was");
            assertEquals(nodeBefore4, TestNetworks.iptablesSave(NODE), "the node's IPv4 nat table as it was");
            connect(node, POD_IP6);
            assertEquals(InetAddress.getByName("fd00:249:5::1"), atZtunnel.poll(5, TimeUnit.SECONDS));
        } finally {
            inPod.remove(TestNetworks.path(POD));
            app.close();
            ztunnel.close();
        }
    }

    @Test
    void theSweepAfterARestartKeepsOneIpv6RulePerKeptPodAndDropsTheStaleOnes() throws Exception {
        NetnsCommand command = new NetnsCommand(Duration.ofSeconds(10));
        HostProbeSnat snat = new HostProbeSnat(TestNetworks.path(NODE), "169.254.7.127",
                RedirectSettings.PROBE_SOURCE_IPV6, command);
        String before4 = TestNetworks.iptablesSave(NODE);
        String before6 = TestNetworks.ip6tablesSave(NODE);
        // Written as the pod's status may spell it; the rules use ip6tables-save's form.
        snat.add(List.of("10.249.5.2", "fd00:249:5:0:0:0:0:2", "fd00:249:5::3"));
        String kept = "-A AMBIENT_POSTROUTING -d fd00:249:5::2/128 -p tcp -m owner --socket-exists -j SNAT"
                + " --to-source " + RedirectSettings.PROBE_SOURCE_IPV6;
        // A copy left by an agent that died halfway.
        List<String> copy = new java.util.ArrayList<>(List.of("ip", "netns", "exec", NODE, "ip6tables", "-t", "nat"));
        copy.addAll(List.of(kept.split(" ")));
        TestNetworks.sh(copy.toArray(String[]::new)).check();
        assertEquals(2, TestNetworks.ip6tablesSave(NODE).lines().filter(kept::equals).count());

        // Pod ::3 left while no agent ran; pod ::2 (and its IPv4 address) stays.
        snat.retainOnly(List.of("10.249.5.2", POD_IP6));
        String after = TestNetworks.ip6tablesSave(NODE);
        assertEquals(1, after.lines().filter(kept::equals).count(), after);
        assertFalse(after.contains("fd00:249:5::3"), after);

        snat.retainOnly(List.of());
        assertEquals(before6, TestNetworks.ip6tablesSave(NODE), "the node's IPv6 nat table as it was");
        assertEquals(before4, TestNetworks.iptablesSave(NODE), "the node's IPv4 nat table as it was");
    }

    /** A dual-stack listener in the pod that records each connection's source (IPv4 ones as IPv4). */
    private static ServerSocket listen(int port, BlockingQueue<InetAddress> sources) throws Exception {
        ServerSocket server;
        try (NetworkNamespace pod = NetworkNamespace.open(TestNetworks.path(POD))) {
            server = pod.call(() -> new ServerSocket(port, 50, InetAddress.getByName("::")));
        }
        Thread.ofPlatform().daemon().start(() -> {
            try (server) {
                while (true) {
                    try (Socket s = server.accept()) {
                        sources.add(s.getInetAddress());
                    }
                }
            } catch (IOException e) {
                // closed
            }
        });
        return server;
    }

    private static void connect(NetworkNamespace from, String ip) throws Exception {
        from.call(() -> {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(ip, 8080), 3000);
            }
            return null;
        });
    }
}
