package dev.ambient.waypoint;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A network namespace beyond the host ("the internet" for egress tests), joined to it by a veth
 * pair: {@link #HOST} on our side, {@link #ADDRESS} on its side, where real servers run (Python's
 * http.server and ssl, socat, Debian's dnsmasq as its resolver), with certificates made by openssl
 * from a test CA. Nothing in it is loopback, so the waypoint dials it as it would a real external
 * host.
 */
final class OutsideWorld implements AutoCloseable {

    static final String NETNS = "wpt-outside";
    static final String HOST = "10.250.80.1";
    static final String ADDRESS = "10.250.80.2";

    final Path dir;
    final Path caCert;
    private final List<Process> processes = new ArrayList<>();

    OutsideWorld(Path dir) throws Exception {
        this.dir = dir;
        this.caCert = dir.resolve("ca.pem");
        close(); // what a killed earlier run left
        sh("ip netns add " + NETNS);
        sh("ip link add wpt-out0 type veth peer name wpt-out1 netns " + NETNS);
        sh("ip addr add " + HOST + "/30 dev wpt-out0 && ip link set wpt-out0 up");
        sh("ip netns exec " + NETNS + " sh -c 'ip addr add " + ADDRESS + "/30 dev wpt-out1 && ip link set wpt-out1 up"
                + " && ip link set lo up'");
    }

    /** A CA and a server certificate from it for {@code names}; returns {cert, key}. */
    Path[] certificate(String file, String... names) throws Exception {
        if (!Files.exists(caCert)) {
            sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + dir.resolve("ca.key")
                    + " -out " + caCert + " -days 1 -subj /CN=egress-test-ca 2>&1");
        }
        return signed(file, caCert, dir.resolve("ca.key"), names);
    }

    /** A certificate from a CA of its own that nobody trusts. */
    Path[] untrustedCertificate(String file, String... names) throws Exception {
        Path otherCa = dir.resolve("other-ca.pem");
        sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + dir.resolve("other-ca.key")
                + " -out " + otherCa + " -days 1 -subj /CN=someone-else 2>&1");
        return signed(file, otherCa, dir.resolve("other-ca.key"), names);
    }

    private Path[] signed(String file, Path ca, Path caKey, String... names) throws Exception {
        Path cert = dir.resolve(file + ".pem");
        Path key = dir.resolve(file + ".key");
        Path ext = dir.resolve(file + ".ext");
        Files.writeString(ext, "subjectAltName=" + String.join(",", java.util.Arrays.stream(names)
                .map(n -> (n.contains("://") ? "URI:" : "DNS:") + n).toList()) + "\n");
        sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + key + " -out " + dir.resolve(
                file + ".csr") + " -subj /CN=" + names[0] + " 2>&1 && openssl x509 -req -in " + dir.resolve(file + ".csr")
                + " -CA " + ca + " -CAkey " + caKey + " -CAcreateserial -out " + cert + " -days 1 -extfile " + ext
                + " 2>&1");
        return new Path[] {cert, key};
    }

    /** The mesh in a box's outside server on {@code port}: plain HTTP, or HTTPS with {@code tls} = {cert, key}. */
    void httpServer(int port, Path[] tls) throws Exception {
        httpServer(true, ADDRESS, port, tls);
    }

    /**
     * Another address beyond the host ({@code 10.250.x.y}, routed through the veth), standing for
     * something that is not the outside world: a pod on another node, a denied network.
     */
    void addAddress(String address) throws Exception {
        sh("ip netns exec " + NETNS + " ip addr add " + address + "/32 dev wpt-out1");
        sh("ip route replace " + address + "/32 via " + ADDRESS);
    }

    /** outside.py at {@code address:port}: in the outside namespace, or on the host itself ({@code outside} false). */
    void httpServer(boolean outside, String address, int port, Path[] tls) throws Exception {
        Path script = Path.of("..", "integration-tests", "meshbox", "pods", "outside.py").toAbsolutePath();
        List<String> cmd = new ArrayList<>(outside ? List.of("ip", "netns", "exec", NETNS) : List.of());
        cmd.addAll(List.of("/usr/bin/python3", script.toString(), address, Integer.toString(port)));
        if (tls != null) {
            cmd.add(tls[0].toString());
            cmd.add(tls[1].toString());
        }
        String name = address.equals(ADDRESS) ? "http-" + port : "http-" + address + "-" + port;
        start(cmd, name);
        awaitPort(address, port);
    }

    /**
     * tls-origin-server.py (Python's ssl, python-h2) on {@code port}: {@code tls} = {cert, key},
     * requiring a client certificate from {@code clientCa} (null: none), offering {@code alpn}
     * ("h2,http/1.1"; null: no ALPN).
     */
    void tlsOriginServer(int port, Path[] tls, Path clientCa, String alpn) throws Exception {
        Path script = Path.of(OutsideWorld.class.getResource("/tls-origin-server.py").toURI());
        start(List.of("ip", "netns", "exec", NETNS, "/usr/bin/python3", script.toString(), ADDRESS,
                Integer.toString(port), tls[0].toString(), tls[1].toString(), clientCa == null ? "-" : clientCa.toString(),
                alpn == null ? "-" : alpn), "origin-" + port);
        awaitPort(ADDRESS, port);
    }

    /** An echo server (socat) on {@code port}. */
    void echoServer(int port) throws Exception {
        start(List.of("ip", "netns", "exec", NETNS, "socat", "TCP-LISTEN:" + port + ",bind=" + ADDRESS
                + ",fork,reuseaddr", "EXEC:cat"), "echo-" + port);
        awaitPort(ADDRESS, port);
    }

    /** dnsmasq on ADDRESS:53, answering only what {@code records} say ({@code --address=/name/ip}). */
    void resolver(String... records) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", NETNS, "dnsmasq", "--keep-in-foreground",
                "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address=" + ADDRESS,
                "--port=53", "--pid-file=", "--user=root", "--log-queries", "--log-facility=-"));
        cmd.addAll(List.of(records));
        start(cmd, "dnsmasq");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!log("dnsmasq").contains("started") && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
    }

    String log(String name) throws IOException {
        Path p = dir.resolve(name + ".log");
        return Files.exists(p) ? Files.readString(p) : "";
    }

    private void start(List<String> cmd, String name) throws IOException {
        processes.add(new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve(name + ".log").toFile()).start());
    }

    private static void awaitPort(String address, int port) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (true) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(address, port), 200);
                return;
            } catch (IOException e) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("nothing listens on " + address + ":" + port, e);
                }
                Thread.sleep(50);
            }
        }
    }

    static String sh(String command) throws Exception {
        Process p = new ProcessBuilder("sh", "-c", command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IllegalStateException(command + " failed: " + out);
        }
        return out;
    }

    @Override
    public void close() throws Exception {
        for (Process p : processes) {
            p.destroy();
            if (!p.waitFor(5, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        }
        processes.clear();
        new ProcessBuilder("sh", "-c", "ip link del wpt-out0 2>/dev/null; ip netns del " + NETNS + " 2>/dev/null")
                .start().waitFor(10, TimeUnit.SECONDS);
    }
}
