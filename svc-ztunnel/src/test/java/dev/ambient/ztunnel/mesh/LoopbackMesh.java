package dev.ambient.ztunnel.mesh;

import dev.ambient.ztunnel.TestNodes;
import dev.ambient.ztunnel.ZtunnelNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Ztunnels for several simulated nodes in one JVM, on loopback addresses, sharing one local root:
 * real sockets and real mutual TLS, driven through their real configuration keys. Workload IPs are
 * 127.0.x.y addresses, which Linux routes to lo without any setup.
 */
public final class LoopbackMesh implements AutoCloseable {

    public static final int HBONE_PORT = 25008;

    private final Path dir;
    private final Path config;
    private final List<ZtunnelNode> nodes = new ArrayList<>();
    private final List<AutoCloseable> closeables = new ArrayList<>();

    public LoopbackMesh(Path dir, String yaml) throws IOException {
        this.dir = dir;
        this.config = dir.resolve("mesh.yaml");
        Files.writeString(config, yaml);
    }

    public Path configFile() {
        return config;
    }

    public Path caDir() {
        return dir.resolve("ca");
    }

    /** Starts a ztunnel for {@code node} whose node IP (SOCKS5) is {@code nodeIp}. */
    public ZtunnelNode node(String node, String nodeIp, int socksPort, Map<String, String> extra) throws Exception {
        Map<String, String> p = new HashMap<>();
        p.put("ztunnel.node-name", node);
        p.put("ztunnel.node-ip", nodeIp);
        p.put("ztunnel.local-config", config.toString());
        p.put("ztunnel.identity.ca-dir", caDir().toString());
        p.put("ztunnel.ports.hbone", Integer.toString(HBONE_PORT));
        p.put("ztunnel.ports.socks5", Integer.toString(socksPort));
        p.put("ztunnel.ports.admin", "0");
        p.put("ztunnel.ports.outbound-capture", "0");
        p.put("ztunnel.ports.inbound-plaintext", "0");
        p.put("ztunnel.dataplane.threads", "2");
        p.putAll(extra);
        ZtunnelNode n = TestNodes.start(p);
        nodes.add(n);
        // As a kubelet waits for readiness: every local identity holds a valid certificate.
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (n.certificates().status().stream().anyMatch(st -> !"valid".equals(st.state()))
                && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        return n;
    }

    public ZtunnelNode node(String node, String nodeIp, int socksPort) throws Exception {
        return node(node, nodeIp, socksPort, Map.of());
    }

    /** An echo server: returns every byte, and half-closes when the client has. */
    public EchoServer echo(String ip, int port) throws IOException {
        EchoServer e = new EchoServer(new InetSocketAddress(ip, port));
        closeables.add(e);
        return e;
    }

    /** Connects through SOCKS5 from {@code sourceIp} (the workload's own address) to {@code host:port}. */
    public static Socket socks(InetSocketAddress proxy, String sourceIp, String host, int port) throws IOException {
        Socket s = new Socket(new Proxy(Proxy.Type.SOCKS, proxy));
        s.setSoTimeout(20_000);
        s.bind(new InetSocketAddress(sourceIp, 0));
        s.connect(InetSocketAddress.createUnresolved(host, port), 10_000);
        return s;
    }

    /** Sends {@code payload}, half-closes, reads until EOF; returns the SHA-256 of what came back. */
    public static String roundTrip(Socket s, byte[] payload) throws Exception {
        try (s) {
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    OutputStream out = s.getOutputStream();
                    for (int off = 0; off < payload.length; off += 65_536) {
                        out.write(payload, off, Math.min(65_536, payload.length - off));
                    }
                    s.shutdownOutput();
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            InputStream in = s.getInputStream();
            byte[] buf = new byte[65_536];
            for (int n; (n = in.read(buf)) > 0;) {
                md.update(buf, 0, n);
            }
            writer.join();
            return HexFormat.of().formatHex(md.digest());
        }
    }

    public static String sha256(byte[] data) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
    }

    @Override
    public void close() throws Exception {
        for (ZtunnelNode n : nodes) {
            n.close();
        }
        for (AutoCloseable c : closeables) {
            c.close();
        }
    }

    /** Echo server on a real socket, one virtual thread per connection. */
    public static final class EchoServer implements AutoCloseable {
        private final ServerSocket server;
        private final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
        public final java.util.concurrent.atomic.AtomicInteger accepted = new java.util.concurrent.atomic.AtomicInteger();
        public final java.util.Set<String> peers = java.util.concurrent.ConcurrentHashMap.newKeySet();

        EchoServer(InetSocketAddress address) throws IOException {
            server = new ServerSocket();
            server.setReuseAddress(true);
            server.bind(address, 1024);
            pool.execute(this::acceptLoop);
        }

        private void acceptLoop() {
            while (!server.isClosed()) {
                try {
                    Socket s = server.accept();
                    accepted.incrementAndGet();
                    peers.add(s.getInetAddress().getHostAddress());
                    pool.execute(() -> serve(s));
                } catch (IOException e) {
                    return;
                }
            }
        }

        private static void serve(Socket s) {
            try (s) {
                InputStream in = s.getInputStream();
                OutputStream out = s.getOutputStream();
                byte[] buf = new byte[65_536];
                for (int n; (n = in.read(buf)) > 0;) {
                    out.write(buf, 0, n);
                }
                s.shutdownOutput();
            } catch (IOException ignored) {
                // the client went away
            }
        }

        @Override
        public void close() throws IOException {
            server.close();
            pool.shutdownNow();
        }
    }
}
