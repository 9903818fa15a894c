package dev.ambient.ztunnel.dns;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.ambient.net.Transport;
import dev.ambient.proto.workload.NetworkAddress;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.ztunnel.LogCapture;
import dev.ambient.ztunnel.OpenFiles;
import dev.ambient.ztunnel.inpod.SocketNamespace;
import dev.ambient.ztunnel.state.StateSnapshot;
import dev.ambient.ztunnel.state.WorkloadStore;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.InputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The DNS proxy on real UDP and TCP sockets, asked by Debian's dig, forwarding to Debian's dnsmasq
 * (both independent of our codec), and fed hostile bytes from plain sockets. The client is the
 * workload at 127.0.0.1 (namespace {@code default}) as in shared mode.
 */
@Timeout(120)
class DnsProxyTest {

    static final String LO = "127.0.0.1";
    static final int UPSTREAM = 55153;
    static final int BLACK_HOLE = 55154;
    static final int PROXY = 55253;
    static final byte[] HTTPBIN_VIP = {10, 96, 0, 20};
    static final byte[] API_VIP = {(byte) 240, (byte) 240, 1, 2};

    static Transport transport;
    static WorkloadStore store;
    Dnsmasq dnsmasq;
    SimpleMeterRegistry registry;
    DnsListener listener;
    DnsCache cache;

    @BeforeAll
    static void mesh() {
        transport = Transport.create("dns-test", 2);
        Workload sleep = Workload.newBuilder().setUid("Kubernetes//Pod/default/sleep").setName("sleep")
                .setNamespace("default").setNode("node-a").setTunnelProtocol(TunnelProtocol.HBONE)
                .addAddresses(ByteString.copyFrom(new byte[] {127, 0, 0, 1})).build();
        store = new WorkloadStore(StateSnapshot.of(List.of(sleep), List.of(
                service("httpbin", "default", "httpbin.default.svc.cluster.local", HTTPBIN_VIP, List.of()),
                service("headless", "default", "headless.default.svc.cluster.local", null, List.of()),
                service("example-api", "egress", "api.example.com", API_VIP, List.of()),
                service("private", "egress", "private.example", new byte[] {(byte) 240, (byte) 240, 1, 3},
                        List.of("egress"))), List.of(), List.of()));
    }

    static Service service(String name, String ns, String host, byte[] vip, List<String> exportTo) {
        Service.Builder b = Service.newBuilder().setName(name).setNamespace(ns).setHostname(host)
                .addPorts(Port.newBuilder().setServicePort(80)).addAllExportTo(exportTo);
        if (vip != null) {
            b.addAddresses(NetworkAddress.newBuilder().setAddress(ByteString.copyFrom(vip)));
        }
        return b.build();
    }

    @AfterAll
    static void stop() {
        transport.close();
    }

    /** A proxy at 127.0.0.1:PROXY forwarding to {@code upstreams}, with the given limits. */
    void proxy(List<Integer> upstreams, DnsProxy.Limits limits) {
        registry = new SimpleMeterRegistry();
        cache = new DnsCache(1000, Duration.ofMinutes(5), Duration.ofSeconds(30));
        List<InetSocketAddress> servers = upstreams.stream().map(p -> new InetSocketAddress(LO, p)).toList();
        DnsProxy proxy = new DnsProxy(store, "cluster.local", cache,
                new DnsUpstream(transport, servers, Duration.ofMillis(500), 0), new DnsMetrics(registry, cache), limits);
        DnsProxy.Client client = proxy.client("client 127.0.0.1",
                () -> store.current().workloadByAddress(InetAddress.getLoopbackAddress()), SocketNamespace.HOST);
        listener = new DnsListener(transport, proxy, ip -> client, ch -> { });
        listener.bind(new InetSocketAddress(LO, PROXY));
    }

    static DnsProxy.Limits generous() {
        return new DnsProxy.Limits(10_000, 10_000, 512, 64, 16, Duration.ofSeconds(10), 30);
    }

    @AfterEach
    void close() throws Exception {
        if (listener != null) {
            listener.close();
        }
        if (dnsmasq != null) {
            dnsmasq.close();
        }
    }

    static Dig dig(String... args) throws Exception {
        return Dig.run(null, LO, PROXY, args);
    }

    double count(String name, String... tags) {
        var c = registry.find(name).tags(tags).counter();
        return c == null ? 0 : c.count();
    }

    @Test
    void meshNamesAreAnsweredHereAndTheRestForwardedAndCached() throws Exception {
        dnsmasq = Dnsmasq.start(null, LO, UPSTREAM, "--address=/api.example.com/203.0.113.10",
                "--address=/private.example/192.0.2.99");
        proxy(List.of(UPSTREAM), generous());

        Dig httpbin = dig("httpbin.default.svc.cluster.local", "A");
        assertEquals("NOERROR", httpbin.status(), httpbin.output());
        assertEquals(List.of("10.96.0.20"), httpbin.data());
        assertTrue(httpbin.flags().contains("aa"), "answered by the proxy itself: " + httpbin.flags());
        assertEquals(30, httpbin.ttl());
        // The short forms a pod's resolver may send as they are.
        assertEquals(List.of("10.96.0.20"), dig("+nosearch", "httpbin", "A").data());
        assertEquals(List.of("10.96.0.20"), dig("httpbin.default", "A").data());
        assertEquals(List.of("10.96.0.20"), dig("HttpBin.Default.svc", "A").data());
        Dig aaaa = dig("httpbin.default.svc.cluster.local", "AAAA");
        assertEquals("NOERROR", aaaa.status());
        assertEquals(List.of(), aaaa.answers(), "no IPv6 address: no data (never the upstream's)");

        // A ServiceEntry host: the mesh's (auto-allocated) address wins over what the world says.
        assertEquals(List.of("240.240.1.2"), dig("api.example.com", "A").data());
        assertEquals(0, dnsmasq.queriesFor("api.example.com"), "never asked upstream");
        Dig expanded = dig("api.example.com.default.svc.cluster.local", "A");
        assertEquals("NXDOMAIN", expanded.status(), "a search-path expansion of a known name");
        // Not exported to this client's namespace: the upstream's answer.
        assertEquals(List.of("192.0.2.99"), dig("private.example", "A").data());
        // Headless: no address here, the upstream knows (dnsmasq has nothing: NOERROR/REFUSED, whatever it says).
        dig("headless.default.svc.cluster.local", "A");
        assertEquals(1, dnsmasq.queriesFor("headless.default.svc.cluster.local"));

        // Forwarded and cached: the second answer comes from the cache, its TTL lower or equal.
        Dig first = dig("www.outside.test", "A");
        assertEquals(List.of("198.51.100.20"), first.data());
        Thread.sleep(1100);
        Dig second = dig("www.outside.test", "A");
        assertEquals(List.of("198.51.100.20"), second.data());
        assertEquals(1, dnsmasq.queriesFor("www.outside.test"), "the second came from the cache");
        assertTrue(second.ttl() < first.ttl(), first.ttl() + " then " + second.ttl());
        assertEquals(1, count("ztunnel_dns_cache_hits"));
        Dig nx = dig("nothing.outside.test", "A");
        assertEquals("NXDOMAIN", nx.status());
        assertTrue(count("istio_dns_requests", "source_workload_namespace", "default", "source_workload", "sleep") >= 10);
        assertEquals(4, count("istio_dns_upstream_requests"), "private, headless, www, nothing");
    }

    @Test
    void anAnswerTooLargeForUdpIsTruncatedAndTheClientGetsItOverTcp() throws Exception {
        dnsmasq = Dnsmasq.start(null, LO, UPSTREAM);
        proxy(List.of(UPSTREAM), generous());
        Dig big = dig("+noedns", "big.outside.test", "TXT");
        assertTrue(big.output().contains("Truncated, retrying in TCP mode"), big.output());
        assertEquals("NOERROR", big.status());
        assertEquals(3, big.answers().size(), big.output());
        Dig tcp = dig("+tcp", "big.outside.test", "TXT");
        assertEquals(3, tcp.answers().size(), tcp.output());
        assertEquals(List.of("10.96.0.20"), dig("+tcp", "httpbin.default.svc.cluster.local").data());
    }

    @Test
    void malformedQueriesAreAnsweredFormerrOrDroppedEachWithALogLine() throws Exception {
        dnsmasq = Dnsmasq.start(null, LO, UPSTREAM);
        proxy(List.of(UPSTREAM), generous());
        try (LogCapture log = new LogCapture(DnsProxy.class.getName()); DatagramSocket s = new DatagramSocket()) {
            s.setSoTimeout(700);
            s.connect(new InetSocketAddress(LO, PROXY));
            // Five bytes: not even a header. Dropped.
            assertNull(exchange(s, "1234567890"));
            // A compression pointer loop: FORMERR with the query's id.
            byte[] loop = exchange(s, "beef 0100 0001 0000 0000 0000 01 61 c00c 0001 0001");
            assertEquals("beef", HexFormat.of().formatHex(loop, 0, 2));
            assertEquals(DnsMessage.FORMERR, loop[3] & 0x0f);
            // A response sent to us (a reflection attempt): dropped.
            assertNull(exchange(s, "beef 8180 0001 0000 0000 0000 01 61 00 0001 0001"));
            // Two questions: FORMERR. An opcode other than QUERY (STATUS): NOTIMP.
            assertEquals(DnsMessage.FORMERR, exchange(s, "0001 0100 0002 0000 0000 0000 01 61 00 0001 0001 01 62 00 0001 0001")[3] & 0x0f);
            assertEquals(DnsMessage.NOTIMP, exchange(s, "0002 1100 0001 0000 0000 0000 01 61 00 0001 0001")[3] & 0x0f);
            // A name over 255 bytes: FORMERR.
            String label = "3f" + "61".repeat(63);
            assertEquals(DnsMessage.FORMERR, exchange(s, "0003 0100 0001 0000 0000 0000" + label.repeat(4) + "00 0001 0001")[3] & 0x0f);
            List<String> lines = log.lines();
            assertTrue(lines.stream().anyMatch(l -> l.contains("no DNS query") && l.contains("dropped")), lines.toString());
            assertTrue(lines.stream().anyMatch(l -> l.contains("does not point backwards") && l.contains("FORMERR")),
                    lines.toString());
            assertTrue(lines.stream().anyMatch(l -> l.contains("DNS response to the proxy")), lines.toString());
            assertTrue(lines.stream().anyMatch(l -> l.contains("name longer than 255")), lines.toString());
        }
        assertTrue(count("ztunnel_dns_refused", "reason", "malformed") >= 3);
        // And the next good client is served.
        assertEquals(List.of("10.96.0.20"), dig("httpbin.default.svc.cluster.local").data());
        assertEquals(List.of("198.51.100.20"), dig("www.outside.test").data());
    }

    /** The server closed the connection: end of stream, or a reset when it left our bytes unread. */
    static boolean closedByServer(Socket s) throws Exception {
        try {
            return s.getInputStream().read() == -1;
        } catch (java.net.SocketException e) {
            return e.getMessage().contains("reset");
        }
    }

    static byte[] exchange(DatagramSocket s, String hex) throws Exception {
        byte[] q = HexFormat.of().parseHex(hex.replace(" ", ""));
        s.send(new DatagramPacket(q, q.length));
        DatagramPacket p = new DatagramPacket(new byte[4096], 4096);
        try {
            s.receive(p);
        } catch (SocketTimeoutException e) {
            return null;
        }
        return java.util.Arrays.copyOf(p.getData(), p.getLength());
    }

    @Test
    void knownNamesKeepBeingAnsweredWhileTheUpstreamIsDownAndTheRestFailFast() throws Exception {
        dnsmasq = Dnsmasq.start(null, LO, UPSTREAM);
        proxy(List.of(UPSTREAM), generous());
        assertEquals(List.of("198.51.100.20"), dig("www.outside.test").data());
        dnsmasq.close();
        dnsmasq = null;

        assertEquals(List.of("10.96.0.20"), dig("httpbin.default.svc.cluster.local").data());
        assertEquals(List.of("240.240.1.2"), dig("api.example.com").data());
        assertEquals("NXDOMAIN", dig("api.example.com.svc.cluster.local").status());
        assertEquals(List.of("198.51.100.20"), dig("www.outside.test").data(), "cached: still answered");
        Dig unknown = dig("other.outside.test");
        assertEquals("SERVFAIL", unknown.status(), unknown.output());
        assertTrue(unknown.millis() < 2500, "SERVFAIL at once (port unreachable), took " + unknown.millis() + " ms");

        // An upstream that swallows queries: SERVFAIL after the upstream timeout (500 ms), never silence.
        listener.close();
        try (DatagramSocket hole = new DatagramSocket(new InetSocketAddress(LO, BLACK_HOLE))) {
            proxy(List.of(BLACK_HOLE), generous());
            Dig slow = dig("slow.outside.test");
            assertEquals("SERVFAIL", slow.status(), slow.output());
            assertTrue(slow.millis() >= 450 && slow.millis() < 2900, "took " + slow.millis() + " ms");
            assertEquals(1, count("istio_dns_upstream_failures", "reason", "timeout"));
            assertEquals(List.of("10.96.0.20"), dig("httpbin.default.svc.cluster.local").data());
        }
    }

    @Test
    void whatOneHostilePodCanMakeItDoIsBounded() throws Exception {
        long fdsBefore = OpenFiles.count();
        try (DatagramSocket hole = new DatagramSocket(new InetSocketAddress(LO, BLACK_HOLE))) {
            // 50 queries a second, a burst of 100, 8 waiting for the upstream, 4 TCP connections.
            proxy(List.of(BLACK_HOLE), new DnsProxy.Limits(50, 100, 512, 8, 4, Duration.ofSeconds(2), 30));

            // Upstream queries waiting: at most 8; the rest are answered SERVFAIL at once.
            try (DatagramSocket s = new DatagramSocket()) {
                s.connect(new InetSocketAddress(LO, PROXY));
                s.setSoTimeout(300);
                for (int i = 0; i < 30; i++) {
                    byte[] q = DnsMessage.query(i, "n" + i + ".outside.test", DnsMessage.TYPE_A);
                    s.send(new DatagramPacket(q, q.length));
                }
                int servfailAtOnce = 0;
                try {
                    while (true) {
                        DatagramPacket p = new DatagramPacket(new byte[512], 512);
                        s.receive(p);
                        if ((p.getData()[3] & 0x0f) == DnsMessage.SERVFAIL) {
                            servfailAtOnce++;
                        }
                    }
                } catch (SocketTimeoutException e) {
                    // the quick answers are in
                }
                assertEquals(22, servfailAtOnce, "30 queries, 8 wait for the upstream");
                assertEquals(22, count("ztunnel_dns_refused", "reason", "outstanding"));
            }
            Thread.sleep(1200); // the 8 time out; the budget refills

            // A flood: 2,000 queries in about 2 s (paced, so the kernel's socket buffer drops none);
            // about burst + rate x time are answered, the rest refused.
            java.util.concurrent.atomic.AtomicInteger received = new java.util.concurrent.atomic.AtomicInteger();
            long start = System.nanoTime();
            try (DatagramSocket s = new DatagramSocket()) {
                s.connect(new InetSocketAddress(LO, PROXY));
                s.setSoTimeout(700);
                Thread reader = Thread.ofPlatform().start(() -> {
                    try {
                        while (true) {
                            s.receive(new DatagramPacket(new byte[512], 512));
                            received.incrementAndGet();
                        }
                    } catch (Exception e) {
                        // timed out: done
                    }
                });
                for (int i = 0; i < 2000; i++) {
                    byte[] q = DnsMessage.query(i, "httpbin.default.svc.cluster.local", DnsMessage.TYPE_A);
                    s.send(new DatagramPacket(q, q.length));
                    if (i % 20 == 19) {
                        Thread.sleep(20);
                    }
                }
                reader.join();
            }
            int answered = received.get();
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf("flood: 2000 queries, %d answered in %.2f s (budget 100 + 50/s)%n", answered, seconds);
            assertTrue(answered >= 100 && answered <= 100 + 50 * seconds + 10, answered + " answered in " + seconds + " s");
            // What the kernel did not drop from the socket's buffer and the budget refused is counted.
            double limited = count("ztunnel_dns_refused", "reason", "rate_limited");
            System.out.printf("flood: %.0f refused by the rate limit%n", limited);
            assertTrue(limited >= 2000 - answered - 100, limited + " rate-limited");

            // TCP: at most 4 connections; a fifth is closed at once. An oversized message closes its connection.
            Thread.sleep(1000);
            List<Socket> open = new ArrayList<>();
            try {
                for (int i = 0; i < 4; i++) {
                    open.add(new Socket(LO, PROXY));
                }
                Thread.sleep(200);
                try (Socket fifth = new Socket(LO, PROXY)) {
                    fifth.setSoTimeout(2000);
                    assertTrue(closedByServer(fifth), "the fifth connection is closed");
                }
                assertEquals(1, count("ztunnel_dns_refused", "reason", "tcp_connections"));
                Socket oversized = open.getFirst();
                oversized.setSoTimeout(2000);
                DataOutputStream out = new DataOutputStream(oversized.getOutputStream());
                out.writeShort(5000);
                out.write(new byte[5000]);
                out.flush();
                assertTrue(closedByServer(oversized), "closed: a 5000-byte query");
                assertEquals(1, count("ztunnel_dns_refused", "reason", "oversized"));
                // A well-behaved TCP query on another connection is answered.
                Socket good = open.get(1);
                good.setSoTimeout(2000);
                byte[] q = DnsMessage.query(77, "httpbin.default.svc.cluster.local", DnsMessage.TYPE_A);
                DataOutputStream gout = new DataOutputStream(good.getOutputStream());
                gout.writeShort(q.length);
                gout.write(q);
                gout.flush();
                InputStream in = good.getInputStream();
                DataInputStream din = new DataInputStream(in);
                byte[] answer = new byte[din.readUnsignedShort()];
                din.readFully(answer);
                assertEquals(List.of("10.96.0.20"), DnsMessage.parse(answer).addresses(DnsMessage.TYPE_A).stream()
                        .map(a -> {
                            try {
                                return InetAddress.getByAddress(a).getHostAddress();
                            } catch (Exception e) {
                                throw new IllegalStateException(e);
                            }
                        }).toList());
                // Idle connections are closed after the idle timeout (2 s).
                Socket idle = open.get(2);
                idle.setSoTimeout(5000);
                assertTrue(closedByServer(idle), "idle connection closed");
            } finally {
                for (Socket s : open) {
                    s.close();
                }
            }
        }
        Thread.sleep(1500);
        assertEquals(List.of("10.96.0.20"), dig("httpbin.default.svc.cluster.local").data(), "a good client afterwards");
        long fdsAfter = OpenFiles.count();
        System.out.printf("file descriptors: %d before, %d after%n", fdsBefore, fdsAfter);
        assertTrue(fdsAfter <= fdsBefore + 20, fdsBefore + " -> " + fdsAfter);
    }
}
