package dev.ambient.ztunnel.dns;

import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Debian's dnsmasq as a real upstream resolver (package dnsmasq-base), authoritative for
 * {@code outside.test} (unknown names there are NXDOMAIN), started in the foreground and stopped by
 * its process handle. Optionally inside a network namespace ({@code ip netns exec}).
 */
public final class Dnsmasq implements AutoCloseable {

    public static final String BIG_TXT = "x".repeat(200);

    private final Process process;
    private final Path log;

    private Dnsmasq(Process process, Path log) {
        this.process = process;
        this.log = log;
    }

    /**
     * @param netns a network namespace to run in, or null
     * @param records extra dnsmasq options (e.g. {@code --address=/api.example.com/203.0.113.10})
     */
    public static Dnsmasq start(String netns, String address, int port, String... records) throws Exception {
        List<String> cmd = new ArrayList<>();
        if (netns != null) {
            cmd.addAll(List.of("ip", "netns", "exec", netns));
        }
        cmd.addAll(List.of("dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--bind-interfaces", "--listen-address=" + address, "--port=" + port, "--pid-file=", "--user=root",
                "--log-queries", "--log-facility=-", "--local=/outside.test/", "--local-ttl=300",
                "--host-record=probe.outside.test,198.51.100.1",
                "--host-record=www.outside.test,198.51.100.20",
                "--txt-record=big.outside.test," + BIG_TXT + "," + BIG_TXT,
                "--txt-record=big.outside.test," + BIG_TXT + "," + BIG_TXT,
                "--txt-record=big.outside.test," + BIG_TXT + "," + BIG_TXT));
        cmd.addAll(List.of(records));
        Path log = Files.createTempFile("dnsmasq", ".log");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        Dnsmasq d = new Dnsmasq(p, log);
        d.awaitAnswering(netns == null ? new InetSocketAddress(address, port) : null);
        return d;
    }

    private void awaitAnswering(InetSocketAddress at) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException("dnsmasq exited: " + log());
            }
            if (at == null ? log().contains("started") : answers(at)) {
                return;
            }
            Thread.sleep(50);
        }
        throw new IllegalStateException("dnsmasq not answering: " + log());
    }

    private static boolean answers(InetSocketAddress at) throws IOException {
        try (DatagramSocket s = new DatagramSocket()) {
            s.setSoTimeout(200);
            byte[] q = DnsMessage.query(1, "probe.outside.test", DnsMessage.TYPE_A);
            s.send(new DatagramPacket(q, q.length, at));
            s.receive(new DatagramPacket(new byte[512], 512));
            return true;
        } catch (java.net.SocketTimeoutException | java.net.PortUnreachableException e) {
            return false;
        }
    }

    public String log() throws IOException {
        return Files.readString(log);
    }

    /** How many queries for {@code name} reached dnsmasq. */
    public long queriesFor(String name) throws IOException {
        return log().lines().filter(l -> l.contains("query[") && l.contains(" " + name + " from")).count();
    }

    @Override
    public void close() throws Exception {
        process.destroy();
        if (!process.waitFor(5, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor();
        }
        Files.deleteIfExists(log);
    }
}
