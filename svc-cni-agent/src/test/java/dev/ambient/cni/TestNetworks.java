package dev.ambient.cni;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Real network namespaces for tests ("pods"), named cnit-*, on 10.249.x.x, joined by veth pairs.
 * Every namespace created is deleted by {@link #close()}, also after a failure.
 */
public final class TestNetworks implements AutoCloseable {

    private final List<String> created = new ArrayList<>();

    public static Path path(String name) {
        return Path.of("/var/run/netns", name);
    }

    /** A namespace with loopback up; deletes a leftover of the same name first. */
    public Path add(String name) throws IOException {
        sh("ip", "netns", "del", name).ignoreFailure();
        sh("ip", "netns", "add", name).check();
        created.add(name);
        sh("ip", "-n", name, "link", "set", "lo", "up").check();
        return path(name);
    }

    /** A veth pair between two namespaces with one /24 address on each side. */
    public void link(String a, String aAddr, String b, String bAddr, String tag) throws IOException {
        String va = "cnit" + tag + "a";
        String vb = "cnit" + tag + "b";
        sh("ip", "link", "add", va, "netns", a, "type", "veth", "peer", "name", vb, "netns", b).check();
        sh("ip", "-n", a, "addr", "add", aAddr + "/24", "dev", va).check();
        sh("ip", "-n", b, "addr", "add", bAddr + "/24", "dev", vb).check();
        sh("ip", "-n", a, "link", "set", va, "up").check();
        sh("ip", "-n", b, "link", "set", vb, "up").check();
    }

    /** A namespace with one address on an interface (a veth looped back, this kernel has no dummy): a pod with that IP. */
    public Path pod(String name, String ip) throws IOException {
        Path p = add(name);
        sh("ip", "link", "add", "eth0", "netns", name, "type", "veth", "peer", "name", "eth1", "netns", name).check();
        sh("ip", "-n", name, "addr", "add", ip + "/24", "dev", "eth0").check();
        sh("ip", "-n", name, "link", "set", "eth0", "up").check();
        return p;
    }

    public static String iptablesSave(String ns) throws IOException {
        return save(ns, "iptables-save");
    }

    public static String ip6tablesSave(String ns) throws IOException {
        return save(ns, "ip6tables-save");
    }

    /** {@code tool} (iptables-save or ip6tables-save) in the namespace, without comments and blank lines. */
    private static String save(String ns, String tool) throws IOException {
        Result r = sh("ip", "netns", "exec", ns, tool);
        r.check();
        StringBuilder b = new StringBuilder();
        for (String l : r.out().split("\n")) {
            if (!l.startsWith("#") && !l.isBlank()) {
                b.append(l).append('\n');
            }
        }
        return b.toString();
    }

    @Override
    public void close() {
        for (String n : created.reversed()) {
            try {
                sh("ip", "netns", "del", n).ignoreFailure();
            } catch (IOException e) {
                // best effort
            }
        }
        created.clear();
    }

    public record Result(int code, String out, String err, String what) {
        public Result check() throws IOException {
            if (code != 0) {
                throw new IOException(what + " exited " + code + ": " + err);
            }
            return this;
        }

        void ignoreFailure() {
        }
    }

    public static Result sh(String... argv) throws IOException {
        Process p = new ProcessBuilder(argv).start();
        try {
            if (!p.waitFor(20, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException(String.join(" ", argv) + " timed out");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
        return new Result(p.exitValue(), new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8),
                new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8), String.join(" ", argv));
    }
}
