package dev.ambient.hbone;

import dev.ambient.identity.CertificateAuthority;
import dev.ambient.identity.HboneTls;
import dev.ambient.identity.Pem;
import dev.ambient.identity.SpiffeId;
import dev.ambient.identity.WorkloadCertificate;
import dev.ambient.net.Transport;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An HBONE server of ours on loopback, as the ztunnel and the waypoint run it, with a handler that
 * pays what a real one pays for each CONNECT: an authorization check (counted) and a real TCP dial
 * to an echo server (counted), then the tunnel. Plus the mesh identities the test clients use.
 */
final class HboneTestServer implements AutoCloseable {

    static final String TD = "cluster.local";
    static final SpiffeId SERVER_ID = new SpiffeId(TD, "default", "echo");
    static final SpiffeId CLIENT_ID = new SpiffeId(TD, "default", "sleep");
    /** Another client identity: its connections do not count against {@link #CLIENT_ID}'s. */
    static final SpiffeId OTHER_ID = new SpiffeId(TD, "default", "other");

    /** What the handler does after its authorization check. */
    enum Answer {
        /** dial the echo server (after the delay) and tunnel to it */
        DIAL,
        /** never answer: a handler stuck somewhere */
        NEVER
    }

    final Transport transport = Transport.create("hbone-test", 2);
    final CertificateAuthority ca = CertificateAuthority.create(TD, Duration.ofDays(1));
    final SslContext serverTls;
    final SslContext clientTls;
    final SslContext otherClientTls;
    final HboneAdmission admission;
    final Path root;
    final Path clientChain;
    final Path clientKey;
    final Channel echo;
    final InetSocketAddress echoAddress;
    /** Accepted HBONE connections still open. */
    final ChannelGroup connections = new DefaultChannelGroup("hbone-test", GlobalEventExecutor.INSTANCE);
    final CountingHandler handler;
    final Channel listener;
    final InetSocketAddress address;

    HboneTestServer(Path dir, HboneSettings settings, Answer answer, Duration answerDelay)
            throws IOException {
        this(dir, settings, HboneAdmission.Limits.DEFAULTS, answer, answerDelay);
    }

    /** @param admission the bounds across connections, resolved as for this process (0: automatic) */
    HboneTestServer(Path dir, HboneSettings settings, HboneAdmission.Limits admission, Answer answer,
            Duration answerDelay) throws IOException {
        WorkloadCertificate server = ca.issue(SERVER_ID, Duration.ofHours(1));
        WorkloadCertificate client = ca.issue(CLIENT_ID, Duration.ofHours(1));
        serverTls = HboneTls.serverContext(server, List.of(ca.root()));
        clientTls = HboneTls.clientContext(client, List.of(ca.root()));
        otherClientTls = HboneTls.clientContext(ca.issue(OTHER_ID, Duration.ofHours(1)), List.of(ca.root()));
        long fds = HboneAdmission.maxFileDescriptors();
        this.admission = new HboneAdmission(admission.resolve(fds, Runtime.getRuntime().maxMemory()), fds);
        root = write(dir.resolve("root.pem"), Pem.encodeCertificate(ca.root()));
        clientChain = write(dir.resolve("client-chain.pem"), Pem.encodeCertificates(client.chain()));
        clientKey = write(dir.resolve("client-key.pem"), Pem.encodePrivateKey(client.privateKey()));

        echo = transport.listen(new InetSocketAddress("127.0.0.1", 0), new ChannelInitializer<>() {
            @Override
            protected void initChannel(Channel ch) {
                ch.pipeline().addLast(new Echo());
            }
        });
        echoAddress = (InetSocketAddress) echo.localAddress();
        handler = new CountingHandler(answer, answerDelay);
        HboneServerInitializer hbone = new HboneServerInitializer(() -> serverTls, settings, this.admission, handler);
        listener = transport.listen(new InetSocketAddress("127.0.0.1", 0), hbone.acceptGate(), new ChannelInitializer<>() {
            @Override
            protected void initChannel(Channel ch) {
                connections.add(ch);
                ch.pipeline().addLast(hbone);
            }
        });
        address = (InetSocketAddress) listener.localAddress();
    }

    private static Path write(Path file, String pem) throws IOException {
        Files.writeString(file, pem, StandardCharsets.US_ASCII);
        return file;
    }

    String authority() {
        return Authority.format(echoAddress);
    }

    /** Sockets of the HBONE listener's port in CLOSE-WAIT: the client closed, we did not. */
    int closeWaitSockets() throws IOException, InterruptedException {
        Process ss = new ProcessBuilder("ss", "-tanH", "state", "close-wait", "( sport = :" + address.getPort() + " )")
                .redirectErrorStream(true).start();
        String out = new String(ss.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!ss.waitFor(10, TimeUnit.SECONDS) || ss.exitValue() != 0) {
            throw new IOException("ss failed: " + out);
        }
        return (int) out.lines().filter(l -> !l.isBlank()).count();
    }

    /** Open file descriptors of this JVM (the server's process). */
    static long openFds() throws IOException {
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        }
    }

    @Override
    public void close() {
        listener.close().syncUninterruptibly();
        connections.close().awaitUninterruptibly(2_000);
        echo.close().syncUninterruptibly();
        transport.close();
    }

    /** Echoes bytes; ends its side after the client ended its own. */
    private static final class Echo extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ctx.writeAndFlush(msg);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof ChannelInputShutdownEvent && ctx.channel() instanceof DuplexChannel duplex) {
                duplex.shutdownOutput().addListener(f -> ctx.close());
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }

    /**
     * Counts what the server makes it do: requests handled (each an authorization check), dials,
     * dials in flight at once, and the refusals the server reported (one log line each).
     */
    final class CountingHandler implements HboneRequestHandler {
        final Answer answer;
        final Duration delay;
        final AtomicInteger handled = new AtomicInteger();
        final AtomicInteger dials = new AtomicInteger();
        final AtomicInteger inFlight = new AtomicInteger();
        final AtomicInteger maxInFlight = new AtomicInteger();
        final List<String> refusals = new CopyOnWriteArrayList<>();
        /** Refusals not logged (their line held back by the throttle), per limit. */
        final java.util.Map<HboneLimit, java.util.concurrent.atomic.AtomicLong> counted =
                new java.util.concurrent.ConcurrentHashMap<>();
        /** Connections of good clients: their requests are served but not counted as the attack's cost. */
        final java.util.Set<SocketAddress> good = java.util.concurrent.ConcurrentHashMap.newKeySet();

        CountingHandler(Answer answer, Duration delay) {
            this.answer = answer;
            this.delay = delay;
        }

        @Override
        public void handle(HboneRequest request) {
            boolean counted = !good.contains(request.connectionSource());
            if (counted) {
                handled.incrementAndGet();
            }
            if (!request.target().equals(echoAddress)) {
                request.reject(400, "not the echo server");
                return;
            }
            if (answer == Answer.NEVER) {
                return;
            }
            if (counted) {
                maxInFlight.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
            }
            if (delay.isZero()) {
                dial(request, counted);
            } else {
                request.eventLoop().schedule(() -> dial(request, counted), delay.toMillis(), TimeUnit.MILLISECONDS);
            }
        }

        private void dial(HboneRequest request, boolean counted) {
            if (counted) {
                dials.incrementAndGet();
            }
            new Bootstrap().group(request.eventLoop()).channel(transport.socketChannel())
                    .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                    .handler(new ChannelInitializer<>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            TunnelRelay.holdReads(ch);
                        }
                    })
                    .connect(request.target()).addListener(f -> {
                        if (counted) {
                            inFlight.decrementAndGet();
                        }
                        Channel upstream = ((io.netty.channel.ChannelFuture) f).channel();
                        if (!f.isSuccess()) {
                            request.reject(503, "echo did not answer");
                        } else if (!request.isOpen()) {
                            upstream.close();
                            request.abandon();
                        } else {
                            request.accept(upstream, RelayObserver.NONE);
                        }
                    });
        }

        @Override
        public void refused(SocketAddress remote, String reason) {
            refusals.add(reason);
        }

        @Override
        public void limitCounted(SocketAddress remote, HboneLimit limit) {
            counted.computeIfAbsent(limit, l -> new java.util.concurrent.atomic.AtomicLong()).incrementAndGet();
        }

        long counted(HboneLimit limit) {
            var n = counted.get(limit);
            return n == null ? 0 : n.get();
        }

        long refusalsMentioning(String text) {
            return refusals.stream().filter(r -> r.contains(text)).count();
        }
    }
}
