package dev.ambient.cni.redirect;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.cni.TestNetworks;
import dev.ambient.net.NetworkNamespace;
import dev.ambient.net.OriginalDestination;
import dev.ambient.net.SocketMark;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The in-pod rules in real network namespaces: a "pod" (cnit-rpod) and a peer on the other end of
 * a veth (cnit-rpeer, 10.249.1.1). Real connections from inside the pod show what is captured.
 */
@Timeout(60)
class InPodRedirectionTest {

    static final String POD = "cnit-rpod";
    static final String PEER = "cnit-rpeer";
    static final String POD_IP = "10.249.1.2";
    static final String PEER_IP = "10.249.1.1";
    static final String POD_IP6 = "fd00:249::2";
    static final String PEER_IP6 = "fd00:249::1";

    static TestNetworks nets;
    static Path podNetns;
    static EventLoopGroup group;
    final InPodRedirection redirection =
            new InPodRedirection(RedirectSettings.defaults(), new NetnsCommand(Duration.ofSeconds(10)));

    @BeforeAll
    static void pods() throws Exception {
        nets = new TestNetworks();
        podNetns = nets.add(POD);
        nets.add(PEER);
        nets.link(POD, POD_IP, PEER, PEER_IP, "r");
        // Dual-stack: an IPv6 address on each end too (nodad: usable at once).
        TestNetworks.sh("ip", "-n", POD, "addr", "add", POD_IP6 + "/64", "dev", "cnitra", "nodad").check();
        TestNetworks.sh("ip", "-n", PEER, "addr", "add", PEER_IP6 + "/64", "dev", "cnitrb", "nodad").check();
        group = new EpollEventLoopGroup(1);
    }

    @AfterAll
    static void cleanUp() {
        if (group != null) {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        }
        nets.close();
    }

    /** What the pod's policy routing looks like: its rules and every routing table, of both families. */
    static String routing() throws Exception {
        return TestNetworks.sh("ip", "-n", POD, "rule", "show").check().out()
                + TestNetworks.sh("ip", "-n", POD, "route", "show", "table", "all").check().out()
                + TestNetworks.sh("ip", "-n", POD, "-6", "rule", "show").check().out()
                + TestNetworks.sh("ip", "-n", POD, "-6", "route", "show", "table", "all").check().out();
    }

    @Test
    void installIsIdempotentAndRemovalRestoresTheExactPreviousState() throws Exception {
        String before = TestNetworks.iptablesSave(POD);
        String routingBefore = routing();
        TestNetworks.sh("ip", "netns", "exec", POD, "sysctl", "-qw", "net.ipv4.tcp_migrate_req=0").check();
        redirection.install(podNetns);
        // The pod's own namespace, not the host's: a closing old ztunnel listener hands its queue over.
        assertEquals("1", TestNetworks.sh("ip", "netns", "exec", POD, "sysctl", "-n", "net.ipv4.tcp_migrate_req")
                .check().out().trim());
        String installed = TestNetworks.iptablesSave(POD);
        String routingInstalled = routing();
        // Replies to the ztunnel's transparent sockets: connmark from the ztunnel's looped-back packets,
        // restored onto the application's packets, routed back to the local socket by table 100.
        assertTrue(installed.contains("*mangle"), installed);
        assertTrue(installed.contains("-A AMBIENT_PREROUTING -m mark --mark 0x539 -j CONNMARK --set-xmark 0x111/0xfff"),
                installed);
        assertTrue(installed.contains("-A AMBIENT_OUTPUT -m mark --mark 0x539 -j RETURN"), installed);
        assertTrue(installed.contains(
                "-A AMBIENT_OUTPUT -m connmark --mark 0x111/0xfff -j CONNMARK --restore-mark --nfmask 0xfff --ctmask 0xfff"),
                installed);
        assertTrue(routingInstalled.contains("from all fwmark 0x111/0xfff lookup 100"), routingInstalled);
        assertTrue(routingInstalled.contains("local default dev lo table 100"), routingInstalled);
        assertTrue(installed.contains("-A OUTPUT -j AMBIENT_OUTPUT"), installed);
        assertTrue(installed.contains("-A PREROUTING -j AMBIENT_PREROUTING"), installed);
        assertTrue(installed.contains("-A AMBIENT_OUTPUT -p tcp -j REDIRECT --to-ports 15001"), installed);
        assertTrue(installed.contains("-A AMBIENT_PREROUTING -p tcp -j REDIRECT --to-ports 15006"), installed);
        assertTrue(installed.contains("--dport 15008 -j RETURN"), installed);
        assertTrue(installed.contains("-A AMBIENT_OUTPUT -m mark --mark 0x539 -j RETURN"), installed);
        assertTrue(installed.contains("-s 169.254.7.127/32"), installed);
        assertTrue(installed.contains("-A AMBIENT_OUTPUT -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053"),
                installed);
        assertTrue(installed.contains("-A AMBIENT_OUTPUT -p tcp -m tcp --dport 53 -j REDIRECT --to-ports 15053"),
                installed);
        assertTrue(redirection.installed(podNetns));

        redirection.install(podNetns);
        assertEquals(installed, TestNetworks.iptablesSave(POD), "re-adding changes nothing");
        assertEquals(routingInstalled, routing(), "re-adding adds no second rule or route");

        assertTrue(redirection.remove(podNetns));
        assertEquals(before, TestNetworks.iptablesSave(POD), "removal leaves the namespace as it was");
        assertEquals(routingBefore, routing(), "removal leaves the pod's routing as it was");
        assertFalse(redirection.remove(podNetns), "nothing left to remove");
        assertFalse(redirection.installed(podNetns));
    }

    @Test
    void removalKeepsRulesThatWereThereBefore() throws Exception {
        TestNetworks.sh("ip", "netns", "exec", POD, "iptables", "-t", "nat", "-A", "POSTROUTING", "-d", "10.249.9.9",
                "-j", "RETURN").check();
        TestNetworks.sh("ip", "netns", "exec", POD, "iptables", "-t", "mangle", "-A", "OUTPUT", "-d", "10.249.9.9",
                "-j", "RETURN").check();
        TestNetworks.sh("ip", "-n", POD, "rule", "add", "fwmark", "0x7", "lookup", "7").check();
        TestNetworks.sh("ip", "-n", POD, "route", "add", "blackhole", "10.249.9.9/32", "table", "100").check();
        try {
            String before = TestNetworks.iptablesSave(POD);
            String routingBefore = routing();
            redirection.install(podNetns);
            assertTrue(redirection.remove(podNetns));
            assertEquals(before, TestNetworks.iptablesSave(POD));
            assertEquals(routingBefore, routing(), "someone else's rule and route in table 100 stay");
        } finally {
            TestNetworks.sh("ip", "netns", "exec", POD, "iptables", "-t", "nat", "-D", "POSTROUTING", "-d",
                    "10.249.9.9", "-j", "RETURN");
            TestNetworks.sh("ip", "netns", "exec", POD, "nft", "delete", "table", "ip", "nat");
            TestNetworks.sh("ip", "netns", "exec", POD, "iptables", "-t", "mangle", "-D", "OUTPUT", "-d",
                    "10.249.9.9", "-j", "RETURN");
            TestNetworks.sh("ip", "netns", "exec", POD, "nft", "delete", "table", "ip", "mangle");
            TestNetworks.sh("ip", "-n", POD, "rule", "del", "fwmark", "0x7", "lookup", "7");
            TestNetworks.sh("ip", "-n", POD, "route", "del", "blackhole", "10.249.9.9/32", "table", "100");
        }
    }

    /**
     * The ztunnel hands an inbound connection to the application from the client's address: a socket
     * in the pod with IP_TRANSPARENT and the ztunnel's mark, bound to an address the pod does not
     * have. The application's replies go to that foreign address; only the rules bring them back to
     * the ztunnel's socket instead of out through eth0 (and not to the outbound capture either).
     */
    @Test
    void theApplicationSeesTheClientAddressTheZtunnelBindsAndItsRepliesComeBack() throws Exception {
        String client = "10.249.7.7";
        ServerSocket app = NetworkNamespace.open(podNetns).call(() ->
                new ServerSocket(8080, 50, java.net.InetAddress.getByName(POD_IP)));
        BlockingQueue<String> seen = new LinkedBlockingQueue<>();
        Thread.ofPlatform().daemon().start(() -> {
            try (app) {
                while (true) {
                    try (Socket s = app.accept()) {
                        seen.add(s.getInetAddress().getHostAddress());
                        s.getOutputStream().write("hello\n".getBytes());
                    }
                }
            } catch (Exception e) {
                // closed
            }
        });
        // As every pod has: the kernel routes the application's reply by the main table before the
        // mark is restored (which then re-routes it), so the client's address must be routable.
        TestNetworks.sh("ip", "-n", POD, "route", "add", "default", "via", PEER_IP).check();
        redirection.install(podNetns);
        try {
            assertEquals("hello", transparentConnect(client, 3000));
            assertEquals(client, seen.poll(5, TimeUnit.SECONDS), "the application saw the client's address");

            // Without the rules the application's SYN-ACK leaves through eth0: nothing comes back.
            assertTrue(redirection.remove(podNetns));
            String without = transparentConnect(client, 1000);
            assertTrue(without.startsWith("failed"), without);
        } finally {
            redirection.remove(podNetns);
            app.close();
            TestNetworks.sh("ip", "-n", POD, "route", "del", "default", "via", PEER_IP);
        }
    }

    /** Connects from {@code source} (IP_TRANSPARENT, marked) to the application; its first line, or "failed". */
    private static String transparentConnect(String source, int timeoutMillis) throws Exception {
        BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        try (NetworkNamespace pod = NetworkNamespace.open(podNetns)) {
            io.netty.channel.ChannelFuture f = pod.call(() -> new Bootstrap().group(group).channel(EpollSocketChannel.class)
                    .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, timeoutMillis)
                    .option(io.netty.channel.epoll.EpollChannelOption.IP_TRANSPARENT, true)
                    .handler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            assertTrue(SocketMark.set(ch, 0x539));
                            ch.pipeline().addLast(new ChannelInboundHandlerAdapter() {
                                @Override
                                public void channelRead(ChannelHandlerContext ctx, Object msg) {
                                    io.netty.buffer.ByteBuf b = (io.netty.buffer.ByteBuf) msg;
                                    lines.add(b.toString(java.nio.charset.StandardCharsets.US_ASCII).strip());
                                    b.release();
                                    ctx.close();
                                }

                                @Override
                                public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                                    ctx.close();
                                }
                            });
                        }
                    }).connect(new InetSocketAddress(POD_IP, 8080), new InetSocketAddress(source, 0)));
            f.await(timeoutMillis + 2000L);
            if (!f.isSuccess()) {
                return "failed: " + f.cause();
            }
        }
        String line = lines.poll(5, TimeUnit.SECONDS);
        return line == null ? "failed" : line;
    }

    /**
     * The pod's DNS: an unmodified resolver's UDP and TCP queries to the peer's port 53 land on the
     * DNS listeners in the pod (127.0.0.1:15053), and the UDP answer comes back from the address the
     * client asked (conntrack); the ztunnel's marked sockets reach the real resolver.
     */
    @Test
    void dnsOverUdpAndTcpIsCapturedToTheDnsPortButTheZtunnelsMarkedSocketsAreNot() throws Exception {
        java.net.DatagramSocket resolver = NetworkNamespace.open(TestNetworks.path(PEER)).call(() ->
                new java.net.DatagramSocket(new InetSocketAddress(PEER_IP, 53)));
        Thread.ofPlatform().daemon().start(() -> answerEach(resolver, "resolver"));
        java.net.DatagramSocket proxyUdp;
        ServerSocket proxyTcp;
        try (NetworkNamespace pod = NetworkNamespace.open(podNetns)) {
            proxyUdp = pod.call(() -> new java.net.DatagramSocket(new InetSocketAddress("127.0.0.1", 15053)));
            proxyTcp = pod.call(() -> new ServerSocket(15053, 50, java.net.InetAddress.getByName("127.0.0.1")));
        }
        Thread.ofPlatform().daemon().start(() -> answerEach(proxyUdp, "proxy"));
        BlockingQueue<String> tcpAtProxy = new LinkedBlockingQueue<>();
        Thread.ofPlatform().daemon().start(() -> {
            try (proxyTcp) {
                while (true) {
                    try (Socket s = proxyTcp.accept()) {
                        tcpAtProxy.add(OriginalDestination.class.getSimpleName() + " " + s.getLocalPort());
                    }
                }
            } catch (Exception e) {
                // closed
            }
        });
        redirection.install(podNetns);
        try (NetworkNamespace pod = NetworkNamespace.open(podNetns)) {
            // A plain UDP query to the resolver: the proxy answers, as if from the resolver.
            String[] reply = pod.call(() -> ask(new java.net.DatagramSocket()));
            assertEquals("proxy", reply[0], "captured to 127.0.0.1:15053");
            assertEquals(PEER_IP + ":53", reply[1], "the answer seems to come from the resolver asked");
            // TCP to port 53 goes to the proxy's TCP listener.
            connect(pod, PEER_IP, 53);
            assertEquals("OriginalDestination 15053", tcpAtProxy.poll(5, TimeUnit.SECONDS));

            // The ztunnel's own query carries the mark: it reaches the real resolver.
            BlockingQueue<String> marked = new LinkedBlockingQueue<>();
            Channel ch = pod.call(() -> new Bootstrap().group(group).channel(io.netty.channel.epoll.EpollDatagramChannel.class)
                    .handler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel c) {
                            assertTrue(SocketMark.set(c, 0x539));
                            c.pipeline().addLast(new io.netty.channel.SimpleChannelInboundHandler<io.netty.channel.socket.DatagramPacket>() {
                                @Override
                                protected void channelRead0(ChannelHandlerContext ctx, io.netty.channel.socket.DatagramPacket p) {
                                    marked.add(p.content().toString(java.nio.charset.StandardCharsets.US_ASCII));
                                }
                            });
                        }
                    }).bind(0).sync().channel());
            ch.writeAndFlush(new io.netty.channel.socket.DatagramPacket(io.netty.buffer.Unpooled.wrappedBuffer(
                    "query".getBytes()), new InetSocketAddress(PEER_IP, 53))).sync();
            assertEquals("resolver", marked.poll(5, TimeUnit.SECONDS));
            ch.close().sync();

            // Without the rules the query reaches the resolver again.
            assertTrue(redirection.remove(podNetns));
            assertEquals("resolver", pod.call(() -> ask(new java.net.DatagramSocket()))[0]);
        } finally {
            redirection.remove(podNetns);
            resolver.close();
            proxyUdp.close();
            proxyTcp.close();
        }
    }

    /** Sends "query" to the peer's port 53; returns the answer's text and where it came from. */
    private static String[] ask(java.net.DatagramSocket s) throws Exception {
        try (s) {
            s.setSoTimeout(3000);
            byte[] q = "query".getBytes();
            s.send(new java.net.DatagramPacket(q, q.length, new InetSocketAddress(PEER_IP, 53)));
            java.net.DatagramPacket p = new java.net.DatagramPacket(new byte[100], 100);
            s.receive(p);
            return new String[] {new String(p.getData(), 0, p.getLength()),
                    p.getAddress().getHostAddress() + ":" + p.getPort()};
        }
    }

    private static void answerEach(java.net.DatagramSocket s, String who) {
        try (s) {
            while (true) {
                java.net.DatagramPacket p = new java.net.DatagramPacket(new byte[100], 100);
                s.receive(p);
                byte[] a = who.getBytes();
                s.send(new java.net.DatagramPacket(a, a.length, p.getSocketAddress()));
            }
        } catch (Exception e) {
            // closed
        }
    }

    @Test
    void outboundTcpIsCapturedButTheZtunnelsMarkedSocketsAreNot() throws Exception {
        BlockingQueue<String> atPeer = new LinkedBlockingQueue<>();
        ServerSocket peer = NetworkNamespace.open(TestNetworks.path(PEER)).call(() ->
                new ServerSocket(8080, 50, java.net.InetAddress.getByName(PEER_IP)));
        Thread.ofPlatform().daemon().start(() -> {
            try (peer) {
                while (true) {
                    try (Socket s = peer.accept()) {
                        atPeer.add(s.getInetAddress().getHostAddress());
                    }
                }
            } catch (Exception e) {
                // closed
            }
        });

        BlockingQueue<String> captured = new LinkedBlockingQueue<>();
        Channel capture;
        try (NetworkNamespace pod = NetworkNamespace.open(podNetns)) {
            // The listening socket is created on this thread, inside the pod: it lives there for good.
            capture = pod.call(() -> new ServerBootstrap().group(group).channel(EpollServerSocketChannel.class)
                    .childHandler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            captured.add(OriginalDestination.of(ch).map(InetSocketAddress::toString).orElse("none"));
                            ch.close();
                        }
                    }).bind("0.0.0.0", 15001).sync().channel());
        }
        redirection.install(podNetns);
        try {
            // An unmodified client: a plain socket to the peer, from inside the pod.
            try (NetworkNamespace pod = NetworkNamespace.open(podNetns)) {
                connect(pod, PEER_IP, 8080);
            }
            assertEquals("/" + PEER_IP + ":8080", captured.poll(5, TimeUnit.SECONDS), "captured with its original destination");
            assertEquals(null, atPeer.poll(300, TimeUnit.MILLISECONDS), "the peer saw nothing");

            // The ztunnel's own socket carries the mark: it goes straight to the peer.
            Channel marked;
            try (NetworkNamespace pod = NetworkNamespace.open(podNetns)) {
                marked = pod.call(() -> new Bootstrap().group(group).channel(EpollSocketChannel.class)
                        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 3000)
                        .handler(new ChannelInitializer<Channel>() {
                            @Override
                            protected void initChannel(Channel ch) {
                                assertTrue(SocketMark.set(ch, 0x539), "SO_MARK needs CAP_NET_ADMIN");
                                ch.pipeline().addLast(new ChannelInboundHandlerAdapter() {
                                    @Override
                                    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                                        ctx.close();
                                    }
                                });
                            }
                        }).connect(PEER_IP, 8080).sync().channel());
            }
            assertEquals(POD_IP, atPeer.poll(5, TimeUnit.SECONDS), "the marked connection reached the peer");
            assertEquals(null, captured.poll(300, TimeUnit.MILLISECONDS), "and was not captured");
            marked.close().sync();

            // After removal nothing is captured any more.
            assertTrue(redirection.remove(podNetns));
            try (NetworkNamespace pod = NetworkNamespace.open(podNetns)) {
                connect(pod, PEER_IP, 8080);
            }
            assertEquals(POD_IP, atPeer.poll(5, TimeUnit.SECONDS));
            assertEquals(null, captured.poll(300, TimeUnit.MILLISECONDS));
        } finally {
            redirection.remove(podNetns);
            capture.close().sync();
            peer.close();
        }
    }

    @Test
    void theIpv6RulesAreInstalledIdempotentlyAndRemovedExactlyBesideTheIpv4Ones() throws Exception {
        String before4 = TestNetworks.iptablesSave(POD);
        String before6 = TestNetworks.ip6tablesSave(POD);
        redirection.install(podNetns);
        String installed6 = TestNetworks.ip6tablesSave(POD);
        assertTrue(installed6.contains("-A OUTPUT -j AMBIENT_OUTPUT"), installed6);
        assertTrue(installed6.contains("-A PREROUTING -j AMBIENT_PREROUTING"), installed6);
        assertTrue(installed6.contains("-A AMBIENT_OUTPUT -p tcp -j REDIRECT --to-ports 15001"), installed6);
        assertTrue(installed6.contains("-A AMBIENT_PREROUTING -p tcp -j REDIRECT --to-ports 15006"), installed6);
        assertTrue(installed6.contains("-A AMBIENT_OUTPUT -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053"),
                installed6);
        assertTrue(installed6.contains("-A AMBIENT_OUTPUT -m mark --mark 0x539 -j RETURN"), installed6);
        assertFalse(installed6.contains("169.254.7.127"), "the IPv4 probe source is IPv4's");
        assertTrue(installed6.contains("-A AMBIENT_PREROUTING -s fd16:9254:7127:1337:ffff:ffff:ffff:ffff/128 -p tcp"
                + " -m comment --comment \"kubelet probes, SNATed by the host\" -j RETURN"), installed6);
        // Replies to the ztunnel's transparent IPv6 sockets: the same connmark scheme and routing.
        assertTrue(installed6.contains("-A AMBIENT_OUTPUT -m connmark --mark 0x111/0xfff -j CONNMARK --restore-mark"),
                installed6);
        String rules6 = TestNetworks.sh("ip", "-n", POD, "-6", "rule", "show").check().out();
        assertTrue(rules6.contains("from all fwmark 0x111/0xfff lookup 100"), rules6);
        String routes6 = TestNetworks.sh("ip", "-n", POD, "-6", "route", "show", "table", "all").check().out();
        assertTrue(routes6.contains("local default dev lo table 100"), routes6);
        assertTrue(TestNetworks.iptablesSave(POD).contains("-A AMBIENT_OUTPUT -p tcp -j REDIRECT --to-ports 15001"));
        assertTrue(redirection.installed(podNetns));

        redirection.install(podNetns);
        assertEquals(installed6, TestNetworks.ip6tablesSave(POD), "re-adding changes nothing");

        // Only the IPv6 rules gone: not installed any more, and a new install puts them back.
        TestNetworks.sh("ip", "netns", "exec", POD, "ip6tables", "-t", "nat", "-D", "OUTPUT", "-j", "AMBIENT_OUTPUT")
                .check();
        assertFalse(redirection.installed(podNetns), "half the rules are not the rules");
        redirection.install(podNetns);
        assertEquals(installed6, TestNetworks.ip6tablesSave(POD));

        assertTrue(redirection.remove(podNetns));
        assertEquals(before6, TestNetworks.ip6tablesSave(POD), "removal leaves the IPv6 tables as they were");
        assertEquals(before4, TestNetworks.iptablesSave(POD), "and the IPv4 ones");
        assertFalse(redirection.remove(podNetns), "nothing left to remove");
    }

    /**
     * The ztunnel's capture socket is one dual-stack socket on {@code ::}: an IPv6 connection arrives
     * with its IPv6 original destination (SO_ORIGINAL_DST at SOL_IPV6) and an IPv4 one with its IPv4
     * destination (the socket's IPv4-mapped connection answers at SOL_IP), both from real REDIRECTs.
     */
    @Test
    void outboundTcpOfBothFamiliesIsCapturedOnOneDualStackSocketWithItsOriginalDestination() throws Exception {
        BlockingQueue<String> captured = new LinkedBlockingQueue<>();
        Channel capture;
        try (NetworkNamespace pod = NetworkNamespace.open(podNetns)) {
            capture = pod.call(() -> new ServerBootstrap().group(group).channel(EpollServerSocketChannel.class)
                    .childHandler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            captured.add(OriginalDestination.of(ch).map(dev.ambient.hbone.Authority::format)
                                    .orElse("none"));
                            ch.close();
                        }
                    }).bind("::", 15001).sync().channel());
        }
        redirection.install(podNetns);
        try (NetworkNamespace pod = NetworkNamespace.open(podNetns)) {
            for (String to : java.util.List.of(PEER_IP6, PEER_IP)) {
                connect(pod, to, 8080);
            }
            assertEquals("[" + PEER_IP6 + "]:8080", captured.poll(5, TimeUnit.SECONDS), "IPv6, captured");
            assertEquals(PEER_IP + ":8080", captured.poll(5, TimeUnit.SECONDS), "IPv4 on the same socket");
        } finally {
            redirection.remove(podNetns);
            capture.close().sync();
        }
    }

    /** The pod's DNS over IPv6: a query to the peer's IPv6 port 53 lands on [::1]:15053 and seems answered by the peer. */
    @Test
    void dnsOverIpv6IsCapturedToTheDnsPortOnIpv6Loopback() throws Exception {
        java.net.DatagramSocket proxy;
        try (NetworkNamespace pod = NetworkNamespace.open(podNetns)) {
            proxy = pod.call(() -> new java.net.DatagramSocket(new InetSocketAddress("::1", 15053)));
        }
        Thread.ofPlatform().daemon().start(() -> answerEach(proxy, "proxy"));
        redirection.install(podNetns);
        try (NetworkNamespace pod = NetworkNamespace.open(podNetns)) {
            String[] reply = pod.call(() -> {
                try (java.net.DatagramSocket s = new java.net.DatagramSocket()) {
                    s.setSoTimeout(3000);
                    s.send(new java.net.DatagramPacket("q".getBytes(), 1, new InetSocketAddress(PEER_IP6, 53)));
                    java.net.DatagramPacket p = new java.net.DatagramPacket(new byte[100], 100);
                    s.receive(p);
                    return new String[] {new String(p.getData(), 0, p.getLength()),
                            dev.ambient.hbone.Authority.format((InetSocketAddress) p.getSocketAddress())};
                }
            });
            assertEquals("proxy", reply[0], "captured to [::1]:15053");
            assertEquals("[" + PEER_IP6 + "]:53", reply[1], "the answer seems to come from the resolver asked");
        } finally {
            redirection.remove(podNetns);
            proxy.close();
        }
    }

    /**
     * A node whose ip6tables cannot run: an IPv4-only pod gets the IPv4 rules and is served; a pod with
     * an IPv6 address is refused (its IPv6 traffic would pass the mesh by), never half-captured.
     */
    @Test
    void withoutIp6tablesAnIpv4PodIsRedirectedAndADualStackPodIsRefused() throws Exception {
        InPodRedirection noIp6tables = new InPodRedirection(RedirectSettings.defaults(),
                new NetnsCommand(Duration.ofSeconds(10)), new InPodRedirection.Family("IPv6", "ip6tables-absent-save",
                        "ip6tables-absent-restore", "ip6tables-absent", "ip6", "-6", "::/0"), Path.of("/proc/sys/net/ipv6"));
        Path v4only = nets.pod("cnit-rv4", "10.249.7.2");
        TestNetworks.sh("ip", "netns", "exec", "cnit-rv4", "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1").check();
        try {
            noIp6tables.install(v4only);
            assertTrue(noIp6tables.installed(v4only), "IPv4 rules only, and that is all this node can do");
            assertTrue(TestNetworks.iptablesSave("cnit-rv4").contains("-A AMBIENT_OUTPUT -p tcp -j REDIRECT"));
            assertTrue(noIp6tables.remove(v4only));

            NetnsCommand.Failed refused = org.junit.jupiter.api.Assertions.assertThrows(NetnsCommand.Failed.class,
                    () -> noIp6tables.install(podNetns));
            assertTrue(refused.getMessage().contains(POD_IP6) && refused.getMessage().contains("bypass the mesh"),
                    refused.getMessage());
        } finally {
            noIp6tables.remove(podNetns);
            noIp6tables.remove(v4only);
        }
        assertFalse(redirection.installed(podNetns));
    }

    /** A plain TCP connection from a socket born in the pod (its rules apply to it), closed at once. */
    static void connect(NetworkNamespace pod, String ip, int port) throws Exception {
        pod.run(() -> {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(ip, port), 3000);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
    }

    /**
     * What tcp_migrate_req is for: two listeners share 15006 in the pod (an old and a new ztunnel,
     * SO_REUSEPORT), connections redirected there wait in both accept queues, and the old listener
     * closes. With the setting every queued connection reaches the remaining listener; without it
     * (checked first, so the test can fail) the old listener's queue is reset.
     */
    @Test
    void aClosingListenerHandsItsQueuedConnectionsToTheOneBesideIt() throws Exception {
        redirection.install(podNetns);
        try {
            TestNetworks.sh("ip", "netns", "exec", POD, "sysctl", "-qw", "net.ipv4.tcp_migrate_req=0").check();
            int without = survivorsOfAListenerClosing();
            assertTrue(without < 20, "without tcp_migrate_req the closed listener's queue is lost: " + without);
            redirection.install(podNetns);
            assertEquals(20, survivorsOfAListenerClosing(), "with it, every queued connection is accepted");
        } finally {
            redirection.remove(podNetns);
        }
    }

    /** 20 connections from the peer, queued in two reuseport listeners; one closes; how many the other accepts. */
    private static int survivorsOfAListenerClosing() throws Exception {
        InetSocketAddress at = new InetSocketAddress("0.0.0.0", 15006);
        NetworkNamespace pod = NetworkNamespace.open(podNetns);
        NetworkNamespace peer = NetworkNamespace.open(TestNetworks.path(PEER));
        java.util.List<java.nio.channels.SocketChannel> clients = new java.util.ArrayList<>();
        try (pod; peer;
                java.nio.channels.ServerSocketChannel old = pod.call(() -> reusePort(at));
                java.nio.channels.ServerSocketChannel fresh = pod.call(() -> reusePort(at))) {
            for (int i = 0; i < 20; i++) {
                java.nio.channels.SocketChannel c = peer.call(java.nio.channels.SocketChannel::open);
                clients.add(c);
                c.connect(new InetSocketAddress(POD_IP, 8080)); // redirected to 15006; queued, not accepted
            }
            old.close();
            fresh.configureBlocking(false);
            int accepted = 0;
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
            while (System.nanoTime() < end && accepted < 20) {
                java.nio.channels.SocketChannel a = fresh.accept();
                if (a == null) {
                    Thread.sleep(10);
                } else {
                    accepted++;
                    a.close();
                }
            }
            return accepted;
        } finally {
            for (java.nio.channels.SocketChannel c : clients) {
                c.close();
            }
        }
    }

    private static java.nio.channels.ServerSocketChannel reusePort(InetSocketAddress at) throws java.io.IOException {
        java.nio.channels.ServerSocketChannel s = java.nio.channels.ServerSocketChannel.open();
        s.setOption(java.net.StandardSocketOptions.SO_REUSEPORT, true);
        s.bind(at, 64);
        return s;
    }
}
