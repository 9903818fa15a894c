package dev.ambient.ztunnel.inpod;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.concurrent.TimeUnit;

/**
 * Pods as the kernel sees them, for real (root): one network namespace per pod ({@code zpod-*}),
 * each with an {@code eth0} veth whose other end is on the bridge {@code zbr0} in the host
 * namespace, addresses in 10.248.0.0/16. The in-pod redirection rules are installed with
 * iptables-restore inside a pod's namespace, as the node agent does.
 */
final class PodNetwork {

    static final String BRIDGE = "zbr0";

    private PodNetwork() {
    }

    /** The rules the node agent installs in an enrolled pod (same semantics; our test fixture). */
    static final String REDIRECT_RULES = """
            *nat
            :PREROUTING ACCEPT [0:0]
            :INPUT ACCEPT [0:0]
            :OUTPUT ACCEPT [0:0]
            :POSTROUTING ACCEPT [0:0]
            :ZPOD_PREROUTING - [0:0]
            :ZPOD_OUTPUT - [0:0]
            -A PREROUTING -j ZPOD_PREROUTING
            -A OUTPUT -j ZPOD_OUTPUT
            -A ZPOD_PREROUTING -p tcp --dport 15008 -j RETURN
            -A ZPOD_PREROUTING -i lo -j RETURN
            -A ZPOD_PREROUTING -p tcp -j REDIRECT --to-ports 15006
            -A ZPOD_OUTPUT -m mark --mark 0x539/0xfff -j RETURN
            -A ZPOD_OUTPUT -d 127.0.0.0/8 -j RETURN
            -A ZPOD_OUTPUT -o lo -j RETURN
            -A ZPOD_OUTPUT -p udp --dport 53 -j REDIRECT --to-ports 15053
            -A ZPOD_OUTPUT -p tcp --dport 53 -j REDIRECT --to-ports 15053
            -A ZPOD_OUTPUT -p tcp -j REDIRECT --to-ports 15001
            COMMIT
            *mangle
            :ZPOD_PREROUTING - [0:0]
            :ZPOD_OUTPUT - [0:0]
            -A PREROUTING -j ZPOD_PREROUTING
            -A OUTPUT -j ZPOD_OUTPUT
            -A ZPOD_PREROUTING -m mark --mark 0x539 -j CONNMARK --set-xmark 0x111/0xfff
            -A ZPOD_OUTPUT -m mark --mark 0x539 -j RETURN
            -A ZPOD_OUTPUT -m connmark --mark 0x111/0xfff -j CONNMARK --restore-mark --nfmask 0xfff --ctmask 0xfff
            COMMIT
            """;

    /** The agent's reply routing: the application's marked replies to a client address go back to the ztunnel's socket. */
    static final String REPLY_ROUTING = "ip rule add fwmark 0x111/0xfff lookup 100 pref 32764; "
            + "ip route add local 0.0.0.0/0 dev lo table 100";

    /** The same for IPv6, beside the IPv6 rules. */
    static final String REPLY_ROUTING_V6 = "ip -6 rule add fwmark 0x111/0xfff lookup 100 pref 32764; "
            + "ip -6 route add local ::/0 dev lo table 100";
    /** The same rules for IPv6 (ip6tables-restore): loopback is {@code ::1}, REDIRECT works as for IPv4. */
    static final String REDIRECT_RULES_V6 = REDIRECT_RULES.replace("-d 127.0.0.0/8", "-d ::1/128");

    /** The bridge's IPv6 address in the pods' ULA prefix (dual-stack tests). */
    static final String BRIDGE_V6 = "fd00:a8::ff";

    static boolean usable() {
        try {
            return "0".equals(run("id -u").trim()) && Files.isExecutable(Path.of("/usr/sbin/iptables-restore"))
                    && Files.isExecutable(Path.of("/usr/bin/curl"));
        } catch (Exception e) {
            return false;
        }
    }

    static void createBridge() throws Exception {
        sh("ip link del " + BRIDGE + " 2>/dev/null; true");
        sh("ip link add " + BRIDGE + " type bridge");
        sh("ip addr add 10.248.0.1/16 dev " + BRIDGE);
        sh("ip link set " + BRIDGE + " up");
    }

    /** A pod: netns {@code zpod-<name>}, eth0 with {@code ip}/16, host side {@code zv-<name>} on the bridge. */
    static void createPod(String name, String ip) throws Exception {
        String ns = "zpod-" + name;
        String host = "zv-" + name;
        sh("ip netns del " + ns + " 2>/dev/null; ip link del " + host + " 2>/dev/null; true");
        sh("ip netns add " + ns);
        sh("ip link add " + host + " type veth peer name eth0 netns " + ns);
        sh("ip link set " + host + " master " + BRIDGE + " up");
        sh("ip -n " + ns + " addr add " + ip + "/16 dev eth0");
        sh("ip -n " + ns + " link set eth0 up");
        sh("ip -n " + ns + " link set lo up");
        sh("ip -n " + ns + " route add default via 10.248.0.1");
    }

    /**
     * Makes a pod created by {@link #createPod} dual-stack: {@code ip6}/64 on its eth0 ({@code nodad}:
     * usable at once, no duplicate address detection delay), the bridge's address in the prefix, and a
     * default route through it.
     */
    static void addIpv6(String name, String ip6) throws Exception {
        sh("ip addr show dev " + BRIDGE + " | grep -q " + BRIDGE_V6 + " || ip addr add " + BRIDGE_V6 + "/64 dev "
                + BRIDGE + " nodad");
        sh("ip -n zpod-" + name + " addr add " + ip6 + "/64 dev eth0 nodad");
        sh("ip -n zpod-" + name + " -6 route add default via " + BRIDGE_V6); // service VIPs are off-link
    }

    static void installRedirection(String name) throws Exception {
        restore(name, "iptables-restore", REDIRECT_RULES);
    }

    /** The IPv6 redirection rules in a dual-stack pod, as the node agent installs them with ip6tables-restore. */
    static void installRedirection6(String name) throws Exception {
        restore(name, "ip6tables-restore", REDIRECT_RULES_V6);
    }

    private static void restore(String name, String tool, String rules) throws Exception {
        Process p = new ProcessBuilder("ip", "netns", "exec", "zpod-" + name, tool, "-w")
                .redirectErrorStream(true).start();
        p.getOutputStream().write(rules.getBytes());
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(20, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IllegalStateException(tool + " in zpod-" + name + " failed: " + out);
        }
        String routing = tool.startsWith("ip6") ? REPLY_ROUTING_V6 : REPLY_ROUTING;
        sh("ip netns exec zpod-" + name + " sh -c '" + routing + "'");
    }

    /**
     * An application in {@code pod} on {@code port} that answers each connection with the peer
     * address it sees and logs "peer <ip>" to {@code log}; the caller destroys it.
     */
    static Process servePeerAddress(String pod, int port, Path log) throws Exception {
        Path script = Path.of(System.getProperty("basedir", "")).toAbsolutePath()
                .resolve("src/test/python/peer_address_server.py");
        Process server = new ProcessBuilder("ip", "netns", "exec", "zpod-" + pod, "/usr/bin/python3", script.toString(),
                Integer.toString(port)).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        await(() -> ports(pod).contains(port), "peer address server listening in pod " + pod);
        return server;
    }

    /**
     * A fresh bridge with these pods (name to IP); the redirection rules in the {@code enrolled} ones.
     * Whatever an earlier run left of the same names goes first.
     */
    static void createPods(Map<String, String> pods, List<String> enrolled) throws Exception {
        deleteAll(List.copyOf(pods.keySet()));
        createBridge();
        for (var pod : pods.entrySet()) {
            createPod(pod.getKey(), pod.getValue());
        }
        for (String name : enrolled) {
            installRedirection(name);
        }
    }

    /** Python's http.server on 8080 in {@code pod}, serving {@code /marker.txt} = {@code marker}; the caller destroys it. */
    static Process serveMarker(String pod, Path dir, String marker) throws Exception {
        return serveMarker(pod, dir, marker, "0.0.0.0");
    }

    /** As above, bound to {@code bind} ({@code ::}: both families, python's dual-stack server). */
    static Process serveMarker(String pod, Path dir, String marker, String bind) throws Exception {
        Path www = Files.createDirectories(dir.resolve("www"));
        Files.writeString(www.resolve("marker.txt"), marker + "\n");
        Process server = start(pod, "/usr/bin/python3", "-m", "http.server", "8080", "--bind", bind,
                "--directory", www.toString());
        await(() -> ports(pod).contains(8080), "http.server listening in pod " + pod);
        return server;
    }

    /** TCP ports listening inside a pod, each once, sorted. */
    static List<Integer> ports(String pod) {
        try {
            return listeningPorts(pod).stream().distinct().sorted().toList();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for: " + what);
            }
            Thread.sleep(50);
        }
    }

    static Path netnsPath(String name) {
        return Path.of("/var/run/netns/zpod-" + name);
    }

    static void deleteAll(List<String> pods) {
        for (String name : pods) {
            try {
                sh("ip netns pids zpod-" + name + " 2>/dev/null | xargs -r kill 2>/dev/null; "
                        + "ip netns del zpod-" + name + " 2>/dev/null; ip link del zv-" + name + " 2>/dev/null; true");
            } catch (Exception ignored) {
                // best effort
            }
        }
        try {
            sh("ip link del " + BRIDGE + " 2>/dev/null; true");
        } catch (Exception ignored) {
            // best effort
        }
    }

    /** Starts an unmodified program inside a pod; the caller destroys it. */
    static Process start(String pod, String... command) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", "zpod-" + pod));
        cmd.addAll(List.of(command));
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .start();
    }

    /** curl inside a pod; returns exit code and body as "<code>:<body>". */
    static Result curl(String pod, String url) throws Exception {
        Process p = new ProcessBuilder("ip", "netns", "exec", "zpod-" + pod, "curl", "-sS", "--max-time", "5",
                "-o", "-", url).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(15, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return new Result(-1, out);
        }
        return new Result(p.exitValue(), out);
    }

    record Result(int exit, String output) {
        boolean ok() {
            return exit == 0;
        }
    }

    /** TCP ports listening inside a pod's namespace. */
    static List<Integer> listeningPorts(String pod) throws Exception {
        List<Integer> ports = new ArrayList<>();
        for (String line : run("ip netns exec zpod-" + pod + " ss -Hltn").split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length >= 4) {
                String local = f[3];
                ports.add(Integer.parseInt(local.substring(local.lastIndexOf(':') + 1)));
            }
        }
        return ports;
    }

    /** The socket inode of the listener on {@code port} inside a pod (same inode = same socket). */
    static String listenerInode(String pod, int port) throws Exception {
        for (String line : run("ip netns exec zpod-" + pod + " ss -Hltne").split("\n")) {
            if (line.contains(":" + port + " ")) {
                int i = line.indexOf("ino:");
                return line.substring(i + 4).split("\\s+")[0];
            }
        }
        return null;
    }

    /** Established TCP connections inside a pod, as ss prints them. */
    static List<String> established(String pod) throws Exception {
        String out = run("ip netns exec zpod-" + pod + " ss -Htn state established");
        return out.isBlank() ? List.of() : List.of(out.strip().split("\n"));
    }

    static void sh(String command) throws Exception {
        Process p = new ProcessBuilder("sh", "-c", command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(20, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IllegalStateException(command + " failed: " + out);
        }
    }

    static String run(String command) throws Exception {
        Process p = new ProcessBuilder("sh", "-c", command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(20, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException(command + " timed out");
        }
        return out;
    }
}
