package dev.ambient.waypoint;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.ambient.hbone.HboneAdmission;
import dev.ambient.hbone.HboneClientConnection;
import dev.ambient.hbone.HboneConnector;
import dev.ambient.hbone.HboneHeaders;
import dev.ambient.hbone.HboneRequest;
import dev.ambient.hbone.HboneServerInitializer;
import dev.ambient.hbone.HboneSettings;
import dev.ambient.hbone.RelayObserver;
import dev.ambient.hbone.TunnelRelay;
import dev.ambient.identity.CertificateAuthority;
import dev.ambient.identity.HboneTls;
import dev.ambient.identity.Pem;
import dev.ambient.identity.SpiffeId;
import dev.ambient.net.Transport;
import dev.ambient.waypoint.config.WaypointConfig;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.smallrye.config.PropertiesConfigSource;
import io.smallrye.config.SmallRyeConfig;
import io.smallrye.config.SmallRyeConfigBuilder;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

/**
 * Real parts around a waypoint on loopback, all on one local root: client tunnels (a local TCP
 * port whose connections are carried by HBONE CONNECT to the waypoint, as a source ztunnel
 * does, with the source workload's certificate), endpoint HBONE servers (as a destination
 * ztunnel: terminate HBONE, check nothing, dial the pod's port), and backend HTTP servers (the JDK's).
 */
final class HboneTestBox implements AutoCloseable {

    final Path caDir;
    final CertificateAuthority ca;
    final Transport transport = Transport.create("test-box", 2);
    private final List<AutoCloseable> closeables = new ArrayList<>();
    /** CONNECT authorities seen by the endpoint servers, with the peer identity. */
    final List<String> endpointConnects = java.util.Collections.synchronizedList(new ArrayList<>());

    HboneTestBox(Path dir) {
        this.caDir = dir.resolve("ca");
        this.ca = CertificateAuthority.loadOrCreate(caDir, "cluster.local", Duration.ofDays(1));
    }

    static WaypointConfig config(Map<String, String> props) {
        SmallRyeConfig cfg = new SmallRyeConfigBuilder().withMapping(WaypointConfig.class)
                .withConverter(Duration.class, 100, new io.quarkus.runtime.configuration.DurationConverter())
                .withSources(new PropertiesConfigSource(props, "test", 500)).build();
        return cfg.getConfigMapping(WaypointConfig.class);
    }

    /** A started waypoint on {@code address:hbonePort}, dialling endpoints on {@code upstreamPort}. */
    WaypointNode waypoint(String address, int hbonePort, int upstreamPort, Map<String, String> extra,
            MeterRegistry registry) throws InterruptedException {
        Map<String, String> p = new HashMap<>();
        p.put("waypoint.gateway", "demo/waypoint");
        p.put("waypoint.identity.ca-dir", caDir.toString());
        p.put("waypoint.listen.address", address);
        p.put("waypoint.listen.hbone-port", Integer.toString(hbonePort));
        p.put("waypoint.listen.threads", "2");
        p.put("waypoint.upstream.hbone-port", Integer.toString(upstreamPort));
        p.putAll(extra);
        WaypointNode node = new WaypointNode(config(p), registry).start();
        closeables.add(node);
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!node.identity().valid() && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        return node;
    }

    /**
     * A local port whose every connection is tunnelled to {@code authority} through the HBONE
     * server at {@code server}, presenting {@code source}'s certificate and expecting {@code serverId}.
     */
    InetSocketAddress clientTunnel(InetSocketAddress listen, SpiffeId source, InetSocketAddress server,
            SpiffeId serverId, InetSocketAddress authority) {
        return clientTunnel(listen, source, () -> server, serverId, authority);
    }

    /** As above, choosing the HBONE server for each new connection (as a ztunnel picks a ready waypoint). */
    InetSocketAddress clientTunnel(InetSocketAddress listen, SpiffeId source,
            java.util.function.Supplier<InetSocketAddress> servers, SpiffeId serverId, InetSocketAddress authority) {
        return clientTunnel(listen, source, servers, serverId, authority, client -> client, () -> null);
    }

    /**
     * As above, with the CONNECT's headers chosen by the test, as a hostile peer with a valid
     * certificate chooses them: {@code forwarded} maps the real client address to the one put in
     * {@code Forwarded}, {@code baggage} gives each connection's baggage (null for none).
     */
    InetSocketAddress clientTunnel(InetSocketAddress listen, SpiffeId source,
            java.util.function.Supplier<InetSocketAddress> servers, SpiffeId serverId, InetSocketAddress authority,
            java.util.function.UnaryOperator<InetSocketAddress> forwarded, java.util.function.Supplier<String> baggage) {
        var cert = ca.issue(source, Duration.ofHours(1));
        var tls = HboneTls.clientContext(cert, List.of(ca.root()));
        HboneConnector connector = new HboneConnector(transport, HboneSettings.DEFAULTS, 5_000, 0);
        Channel ch = transport.listen(listen, new ChannelInitializer<>() {
            @Override
            protected void initChannel(Channel tcp) {
                TunnelRelay.holdReads(tcp);
                InetSocketAddress client = (InetSocketAddress) tcp.remoteAddress();
                connector.connect(servers.get(), tls, Set.of(serverId), tcp.eventLoop(), null).addListener(f -> {
                    if (!f.isSuccess()) {
                        tcp.close();
                        return;
                    }
                    HboneClientConnection c = (HboneClientConnection) f.getNow();
                    c.open(HboneHeaders.connect(authority, forwarded.apply(client), baggage.get())).addListener(s -> {
                        if (!s.isSuccess()) {
                            tcp.close();
                            c.close();
                            return;
                        }
                        TunnelRelay.start((io.netty.handler.codec.http2.Http2StreamChannel) s.getNow(), tcp,
                                RelayObserver.NONE).whenComplete((r, e) -> c.close());
                    });
                });
            }
        });
        closeables.add(() -> ch.close().sync());
        return (InetSocketAddress) ch.localAddress();
    }

    /** An HBONE server on {@code listen} as {@code id}, forwarding each CONNECT to its authority over TCP. */
    void endpointServer(InetSocketAddress listen, SpiffeId id) {
        endpointServer(listen, id, target -> target);
    }

    /**
     * As above, delivering each CONNECT to {@code podPort.apply(authority)}: a pod reachable only
     * from its ztunnel (the authority's address itself may refuse plaintext, as under STRICT).
     */
    void endpointServer(InetSocketAddress listen, SpiffeId id, java.util.function.UnaryOperator<InetSocketAddress> podPort) {
        var cert = ca.issue(id, Duration.ofHours(1));
        var tls = HboneTls.serverContext(cert, List.of(ca.root()));
        Channel ch = transport.listen(listen, new HboneServerInitializer(() -> tls, HboneSettings.DEFAULTS,
                HboneAdmission.forThisProcess(HboneAdmission.Limits.DEFAULTS), request -> forward(request, podPort)));
        closeables.add(() -> ch.close().sync());
    }

    private void forward(HboneRequest request, java.util.function.UnaryOperator<InetSocketAddress> podPort) {
        endpointConnects.add(request.peer().uri() + " -> " + request.target().getAddress().getHostAddress() + ":"
                + request.target().getPort());
        new Bootstrap().group(request.eventLoop()).channel(transport.socketChannel())
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        dev.ambient.net.PendingReads.install(ch, 1 << 20);
                    }
                })
                .connect(podPort.apply(request.target())).addListener((ChannelFutureListener) f -> {
                    if (f.isSuccess()) {
                        request.accept(f.channel(), RelayObserver.NONE);
                    } else {
                        request.reject(503, "workload did not accept");
                    }
                });
    }

    /** A certificate of the box's root as PEM files, for peers that are not ours (python-h2). */
    record PemFiles(Path chain, Path key, Path root) {
    }

    /** Writes {@code id}'s certificate chain, its key and the root into {@code dir} (file names after the id's account). */
    PemFiles pemFiles(SpiffeId id, Path dir) throws IOException {
        var cert = ca.issue(id, Duration.ofHours(1));
        String name = id.serviceAccount();
        return new PemFiles(
                java.nio.file.Files.writeString(dir.resolve(name + "-chain.pem"), Pem.encodeCertificates(cert.chain())),
                java.nio.file.Files.writeString(dir.resolve(name + "-key.pem"), Pem.encodePrivateKey(cert.privateKey())),
                java.nio.file.Files.writeString(dir.resolve("root.pem"), Pem.encodeCertificate(ca.root())));
    }

    /** What a TCP application does with one accepted connection. */
    interface App {
        void serve(java.net.Socket connection) throws Exception;
    }

    /**
     * A TCP application on {@code address}, each connection served on a virtual thread of its own
     * (and closed after); what it throws goes to {@code failed}. Stops with the box.
     */
    void app(InetSocketAddress address, App behaviour, java.util.function.Consumer<Exception> failed)
            throws IOException {
        java.net.ServerSocket server = new java.net.ServerSocket();
        server.bind(address);
        closeables.add(server);
        Thread.ofVirtual().start(() -> {
            while (!server.isClosed()) {
                try {
                    java.net.Socket s = server.accept();
                    Thread.ofVirtual().start(() -> {
                        try (s) {
                            behaviour.serve(s);
                        } catch (Exception e) {
                            failed.accept(e);
                        }
                    });
                } catch (IOException e) {
                    return;
                }
            }
        });
    }

    /** What a backend does with one request: status and body. */
    record Reply(int status, String body, long delayMillis) {
        static Reply ok(String body) {
            return new Reply(200, body, 0);
        }
    }

    /** A real HTTP/1.1 server; every request is counted and answered by {@code behaviour}. */
    static final class Backend implements AutoCloseable {
        final HttpServer server;
        final AtomicInteger requests = new AtomicInteger();
        volatile Function<HttpExchange, Reply> behaviour;
        final List<Map<String, List<String>>> headers = java.util.Collections.synchronizedList(new ArrayList<>());
        /** The request bodies received, in the order received. */
        final List<byte[]> bodies = java.util.Collections.synchronizedList(new ArrayList<>());

        Backend(InetSocketAddress address, Function<HttpExchange, Reply> behaviour) throws IOException {
            this.behaviour = behaviour;
            server = HttpServer.create(address, 256);
            server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
            server.createContext("/", ex -> {
                requests.incrementAndGet();
                headers.add(Map.copyOf(ex.getRequestHeaders()));
                bodies.add(ex.getRequestBody().readAllBytes());
                Reply r = this.behaviour.apply(ex);
                if (r.delayMillis() > 0) {
                    try {
                        TimeUnit.MILLISECONDS.sleep(r.delayMillis());
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
                byte[] body = r.body().getBytes(StandardCharsets.UTF_8);
                ex.getResponseHeaders().set("content-type", "text/plain");
                try {
                    ex.sendResponseHeaders(r.status(), body.length == 0 ? -1 : body.length);
                    try (OutputStream out = ex.getResponseBody()) {
                        out.write(body);
                    }
                } catch (IOException e) {
                    // the waypoint gave up on this request (timeout)
                }
            });
            server.start();
        }

        @Override
        public void close() {
            server.stop(0);
        }
    }

    Backend backend(InetSocketAddress address, Function<HttpExchange, Reply> behaviour) throws IOException {
        Backend b = new Backend(address, behaviour);
        closeables.add(b);
        return b;
    }

    @Override
    public void close() throws Exception {
        for (AutoCloseable c : closeables.reversed()) {
            try {
                c.close();
            } catch (Exception ignored) {
                // keep closing the rest
            }
        }
        transport.close();
    }
}
