package dev.ambient.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Real namespaces (root): a fresh one made with {@code ip netns add}, holding a veth pair the host
 * does not have. Entering it shows that interface and its inode; the thread is back
 * afterwards, also when the task throws; a socket made inside stays inside.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class NetworkNamespaceTest {

    private static final String NS = "zpod-nstest";
    private static final Path NS_PATH = Path.of("/var/run/netns/" + NS);

    @BeforeAll
    static void createNamespace() throws Exception {
        sh("ip netns del " + NS + " 2>/dev/null; true");
        sh("ip netns add " + NS);
        sh("ip -n " + NS + " link add zdummy0 type veth peer name zdummy1");
        sh("ip -n " + NS + " addr add 10.248.250.1/32 dev zdummy0");
        sh("ip -n " + NS + " link set zdummy0 up");
        sh("ip -n " + NS + " link set zdummy1 up");
        sh("ip -n " + NS + " link set lo up");
    }

    @AfterAll
    static void deleteNamespace() throws Exception {
        sh("ip netns del " + NS + " 2>/dev/null; true");
    }

    @Test
    void entersTheNamespaceAndComesBack() throws Exception {
        long home = NetworkNamespace.currentInode();
        long expected = (Long) Files.getAttribute(NS_PATH, "unix:ino");
        try (NetworkNamespace ns = NetworkNamespace.open(NS_PATH)) {
            assertEquals(expected, ns.inode());
            assertNotEquals(home, ns.inode());
            List<String> inside = ns.call(() -> {
                assertEquals(expected, NetworkNamespace.currentInode());
                return interfaces();
            });
            assertEquals(List.of("lo", "zdummy0", "zdummy1"), inside);
            assertEquals(home, NetworkNamespace.currentInode());
            assertFalse(interfaces().contains("zdummy0"), "the host has no zdummy0");
        }
    }

    /** The calling thread's interfaces (/proc/net is the main thread's view, thread-self is ours). */
    private static List<String> interfaces() throws IOException {
        return Files.readAllLines(Path.of("/proc/thread-self/net/dev")).stream().skip(2)
                .map(l -> l.substring(0, l.indexOf(':')).trim()).sorted().toList();
    }

    @Test
    void comesBackWhenTheTaskThrows() throws Exception {
        long home = NetworkNamespace.currentInode();
        try (NetworkNamespace ns = NetworkNamespace.open(NS_PATH)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ns.call(() -> {
                throw new IllegalArgumentException("boom inside");
            }));
            assertEquals("boom inside", e.getMessage());
            assertEquals(home, NetworkNamespace.currentInode());
        }
    }

    @Test
    void aSocketMadeInsideStaysInside() throws Exception {
        InetAddress podIp = InetAddress.getByName("10.248.250.1");
        // Channels create their fd at open(), so the namespace is fixed there.
        try (NetworkNamespace ns = NetworkNamespace.open(NS_PATH);
                ServerSocketChannel server = ns.call(ServerSocketChannel::open)) {
            // Bound and used from the host namespace: the socket keeps its own namespace.
            server.bind(new InetSocketAddress(podIp, 0));
            int port = ((InetSocketAddress) server.getLocalAddress()).getPort();
            assertThrows(IOException.class, () -> new ServerSocket(0, 1, podIp).close(),
                    "10.248.250.1 does not exist in the host namespace");
            try (SocketChannel client = ns.call(SocketChannel::open)) {
                client.connect(new InetSocketAddress(podIp, port));
                try (SocketChannel accepted = server.accept()) {
                    accepted.write(ByteBuffer.wrap(new byte[] {42}));
                    ByteBuffer one = ByteBuffer.allocate(1);
                    client.read(one);
                    assertEquals(42, one.get(0));
                }
            }
        }
    }

    @Test
    void refusesWhatIsNotANetworkNamespace() throws Exception {
        IOException notNs = assertThrows(IOException.class, () -> NetworkNamespace.open(Path.of("/etc/hostname")));
        assertTrue(notNs.getMessage().contains("not a network namespace"), notNs.getMessage());
        IOException missing = assertThrows(IOException.class,
                () -> NetworkNamespace.open(Path.of("/var/run/netns/zpod-does-not-exist")));
        assertTrue(missing.getMessage().contains("ENOENT"), missing.getMessage());
        IOException bad = assertThrows(IOException.class, () -> NetworkNamespace.adopt(987654));
        assertTrue(bad.getMessage().contains("not open"), bad.getMessage());
        try (NetworkNamespace mnt = NetworkNamespace.open(Path.of("/proc/self/ns/mnt"))) {
            throw new AssertionError("a mount namespace was taken for a network namespace");
        } catch (IOException e) {
            assertTrue(e.getMessage().contains("not a network namespace"), e.getMessage());
        }
    }

    @Test
    void closedNamespaceCannotBeEntered() throws Exception {
        NetworkNamespace ns = NetworkNamespace.open(NS_PATH);
        assertTrue(ns.isOpen());
        ns.close();
        ns.close();
        assertFalse(ns.isOpen());
        assertThrows(IllegalStateException.class, () -> ns.call(() -> 1));
    }

    private static void sh(String command) throws Exception {
        Process p = new ProcessBuilder("sh", "-c", command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(20, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IllegalStateException(command + " failed: " + out);
        }
    }
}
