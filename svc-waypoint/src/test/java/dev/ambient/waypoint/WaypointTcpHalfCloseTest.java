package dev.ambient.waypoint;

import static dev.ambient.waypoint.MeshFixtures.client;
import static dev.ambient.waypoint.MeshFixtures.key;
import static dev.ambient.waypoint.MeshFixtures.pod;
import static dev.ambient.waypoint.MeshFixtures.service;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import dev.ambient.waypoint.state.WaypointState;
import io.micrometer.prometheus.PrometheusConfig;
import io.micrometer.prometheus.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The end of a TCP stream through the waypoint while the stream is backpressured: a client's FIN
 * (END_STREAM in its tunnel) that arrives while the direction it travels is paused, or while the
 * other direction is, must reach the application as soon as the data before it has, and the
 * application's FIN must come back as promptly. Real sockets, real TLS, real HBONE, through a
 * port declared TCP (spliced at once) and an undeclared one (sniffed, then spliced). Each case
 * runs several times: a lost wake-up is a race between two event loops.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class WaypointTcpHalfCloseTest {

    static final String NS = "demo";
    static final int HBONE = 58008;
    static final int ENDPOINT_HBONE = 58108;
    static final int SINK_PORT = 58701;
    static final int TALKER_PORT = 58702;
    static final int ECHO_PORT = 58703;
    static final String APP_IP = "127.0.97.1";
    static final SpiffeId CLIENT = new SpiffeId("cluster.local", NS, "client");
    static final SpiffeId WAYPOINT = new SpiffeId("cluster.local", NS, "waypoint");
    /** How long the slow application waits before it reads, or the slow client before it reads. */
    static final long LATE_MILLIS = 1_500;
    /** Time allowed for a FIN to cross once nothing holds it: generous for a loaded 2-core machine. */
    static final long FIN_BUDGET_MILLIS = 4_000;
    static final int RUNS = 4;

    static final Service SINK_TCP = service("sink-tcp", NS, "127.0.98.1", 9000, SINK_PORT, "tcp");
    static final Service SINK_SNIFFED = service("sink-sniffed", NS, "127.0.98.2", 9000, SINK_PORT);
    static final Service TALKER_TCP = service("talker-tcp", NS, "127.0.98.3", 9000, TALKER_PORT, "tcp");
    static final Service TALKER_SNIFFED = service("talker-sniffed", NS, "127.0.98.4", 9000, TALKER_PORT);
    static final Service ECHO_TCP = service("echo-tcp", NS, "127.0.98.5", 9000, ECHO_PORT, "tcp");
    static final Service ECHO_SNIFFED = service("echo-sniffed", NS, "127.0.98.6", 9000, ECHO_PORT);

    @TempDir
    static Path dir;
    static HboneTestBox box;
    /** The client-side port of each service's tunnel, by service name. */
    static final Map<String, InetSocketAddress> tunnels = new java.util.concurrent.ConcurrentHashMap<>();
    /** What the sink and the talker saw of their last connection. */
    static volatile CompletableFuture<AppView> lastApp = new CompletableFuture<>();

    /** @param bytesRead until the client's FIN; @param finNanos System.nanoTime() when that FIN was read */
    record AppView(long bytesRead, long finNanos) {
    }

    @BeforeAll
    static void start() throws Exception {
        box = new HboneTestBox(dir);
        WaypointNode waypoint = box.waypoint("127.0.96.1", HBONE, ENDPOINT_HBONE, Map.of(),
                new PrometheusMeterRegistry(PrometheusConfig.DEFAULT));
        List<Service> services = List.of(SINK_TCP, SINK_SNIFFED, TALKER_TCP, TALKER_SNIFFED, ECHO_TCP, ECHO_SNIFFED);
        Workload.Builder app = pod("app", NS, "app", APP_IP, null, 0, 0).toBuilder();
        for (Service s : services) {
            Port p = s.getPorts(0);
            app.putServices(key(s), PortList.newBuilder().addPorts(Port.newBuilder()
                    .setServicePort(p.getServicePort()).setTargetPort(p.getTargetPort())).build());
        }
        waypoint.store().replace(WaypointState.of(List.of(app.build(), client("client", NS, "client", "127.0.0.1")),
                services, List.of(), List.of()));
        box.endpointServer(new InetSocketAddress(APP_IP, ENDPOINT_HBONE), new SpiffeId("cluster.local", NS, "app"));
        serve(SINK_PORT, WaypointTcpHalfCloseTest::slowSink);
        serve(TALKER_PORT, WaypointTcpHalfCloseTest::talker);
        serve(ECHO_PORT, WaypointTcpHalfCloseTest::echo);
        int port = 58710;
        for (Service s : services) {
            InetSocketAddress vip = new InetSocketAddress(WaypointState.address(s.getAddresses(0).getAddress()
                    .toByteArray()), s.getPorts(0).getServicePort());
            tunnels.put(s.getName(), box.clientTunnel(new InetSocketAddress("127.0.96.1", port++), CLIENT,
                    new InetSocketAddress("127.0.96.1", HBONE), WAYPOINT, vip));
        }
    }

    @AfterAll
    static void stop() throws Exception {
        if (box != null) {
            box.close();
        }
    }

    static void serve(int port, Consumer<Socket> behaviour) throws IOException {
        box.app(new InetSocketAddress(APP_IP, port), behaviour::accept, e -> lastApp.completeExceptionally(e));
    }

    /** Reads nothing for a while (the upload backs up to the client), then all of it; answers the count, then FIN. */
    static void slowSink(Socket s) {
        try {
            Thread.sleep(LATE_MILLIS);
            long n = drain(s.getInputStream());
            lastApp.complete(new AppView(n, System.nanoTime()));
            s.getOutputStream().write(ByteBuffer.allocate(8).putLong(n).array());
            s.shutdownOutput();
        } catch (IOException | InterruptedException e) {
            throw new RuntimeException(e);
        }
    }

    /** Sends a large reply at once, reads the client until its FIN, and ends its side after the reply. */
    static void talker(Socket s) {
        try {
            CompletableFuture<Void> reading = CompletableFuture.runAsync(() -> {
                try {
                    long n = drain(s.getInputStream());
                    lastApp.complete(new AppView(n, System.nanoTime()));
                } catch (IOException e) {
                    lastApp.completeExceptionally(e);
                }
            }, java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor());
            s.getOutputStream().write(payload(4 << 20));
            reading.join();
            s.shutdownOutput();
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
    }

    static void echo(Socket s) {
        try {
            s.getInputStream().transferTo(s.getOutputStream());
            s.shutdownOutput();
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
    }

    static long drain(InputStream in) throws IOException {
        byte[] buf = new byte[64 << 10];
        long n = 0;
        for (int r; (r = in.read(buf)) >= 0;) {
            n += r;
        }
        return n;
    }

    /** Random bytes that start like TLS, so a sniffing waypoint takes them for TCP. */
    static byte[] payload(int n) {
        byte[] b = new byte[n];
        new Random(n).nextBytes(b);
        b[0] = 0x16;
        return b;
    }

    static Socket connect(Service s) throws IOException {
        Socket socket = new Socket();
        socket.setSoTimeout(20_000);
        socket.connect(tunnels.get(s.getName()), 5_000);
        return socket;
    }

    static Service pick(String declared, Service tcp, Service sniffed) {
        return declared.equals("tcp") ? tcp : sniffed;
    }

    @ParameterizedTest
    @ValueSource(strings = {"tcp", "sniffed"})
    void finAfterAnUploadTheApplicationReadsLateArrivesWithTheLastByte(String declared) throws Exception {
        Service svc = pick(declared, SINK_TCP, SINK_SNIFFED);
        for (int run = 0; run < RUNS; run++) {
            lastApp = new CompletableFuture<>();
            byte[] body = payload(4 << 20);
            try (Socket s = connect(svc)) {
                s.getOutputStream().write(body); // blocks while the sink does not read: the backpressure
                s.shutdownOutput();
                long finSent = System.nanoTime();
                byte[] answer = s.getInputStream().readAllBytes();
                long eof = System.nanoTime();
                AppView app = lastApp.get(20, TimeUnit.SECONDS);
                assertEquals(body.length, app.bytesRead(), "run " + run + ": bytes the application read");
                long finMs = (app.finNanos() - finSent) / 1_000_000;
                long eofMs = (eof - finSent) / 1_000_000;
                System.out.printf("sink %s run %d: FIN at the application %d ms after shutdownOutput, EOF at the "
                        + "client after %d ms%n", declared, run, finMs, eofMs);
                assertEquals(8, answer.length, "run " + run + ": the sink's answer, then EOF");
                assertEquals(body.length, ByteBuffer.wrap(answer).getLong());
                assertTrue(finMs < LATE_MILLIS + FIN_BUDGET_MILLIS, "run " + run + ": FIN took " + finMs + " ms");
                assertTrue(eofMs < LATE_MILLIS + FIN_BUDGET_MILLIS, "run " + run + ": EOF took " + eofMs + " ms");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tcp", "sniffed"})
    void finCrossesWhileTheReplyIsBackedUpAndTheReplyEndsWhole(String declared) throws Exception {
        Service svc = pick(declared, TALKER_TCP, TALKER_SNIFFED);
        for (int run = 0; run < RUNS; run++) {
            lastApp = new CompletableFuture<>();
            byte[] body = payload(256 << 10);
            try (Socket s = connect(svc)) {
                s.getOutputStream().write(body);
                s.shutdownOutput();
                long finSent = System.nanoTime();
                // The client reads nothing for a while: the 4 MiB reply fills every window back to the talker.
                AppView app = lastApp.get(20, TimeUnit.SECONDS);
                long finMs = (app.finNanos() - finSent) / 1_000_000;
                Thread.sleep(Math.max(0, LATE_MILLIS - finMs));
                long readFrom = System.nanoTime();
                byte[] reply = s.getInputStream().readAllBytes();
                long eofMs = (System.nanoTime() - readFrom) / 1_000_000;
                System.out.printf("talker %s run %d: FIN at the application %d ms after shutdownOutput, reply read "
                        + "whole with EOF in %d ms%n", declared, run, finMs, eofMs);
                assertEquals(body.length, app.bytesRead(), "run " + run + ": bytes the application read");
                assertTrue(finMs < FIN_BUDGET_MILLIS, "run " + run + ": FIN took " + finMs + " ms");
                assertEquals(4 << 20, reply.length, "run " + run + ": reply bytes before EOF");
                assertTrue(java.util.Arrays.equals(payload(4 << 20), reply));
                assertTrue(eofMs < FIN_BUDGET_MILLIS, "run " + run + ": reply and EOF took " + eofMs + " ms");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tcp", "sniffed"})
    void echoOfALargeBodyReadLateEndsWithEof(String declared) throws Exception {
        Service svc = pick(declared, ECHO_TCP, ECHO_SNIFFED);
        for (int run = 0; run < RUNS; run++) {
            byte[] body = payload(2 << 20);
            try (Socket s = connect(svc)) {
                OutputStream out = s.getOutputStream();
                long[] finSent = new long[1];
                Thread writer = Thread.ofVirtual().start(() -> {
                    try {
                        out.write(body);
                        s.shutdownOutput();
                        finSent[0] = System.nanoTime();
                    } catch (IOException e) {
                        throw new RuntimeException(e);
                    }
                });
                Thread.sleep(LATE_MILLIS);
                byte[] back = s.getInputStream().readAllBytes();
                long eof = System.nanoTime();
                writer.join();
                long eofMs = (eof - finSent[0]) / 1_000_000;
                System.out.printf("echo %s run %d: EOF %d ms after shutdownOutput%n", declared, run, eofMs);
                assertEquals(body.length, back.length, "run " + run + ": echoed bytes before EOF");
                assertTrue(java.util.Arrays.equals(body, back));
                assertTrue(eofMs < FIN_BUDGET_MILLIS, "run " + run + ": EOF took " + eofMs + " ms");
            }
        }
    }
}
