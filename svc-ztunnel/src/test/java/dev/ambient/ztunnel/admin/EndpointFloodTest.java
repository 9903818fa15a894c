package dev.ambient.ztunnel.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.ztunnel.LogCapture;
import io.quarkus.test.junit.QuarkusTest;
import jakarta.inject.Inject;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The attack: any pod reaches the probe port (15021) and the metrics port (15020), so one source
 * holding idle connections there must not be able to fill the process's descriptors or heap, nor
 * starve the kubelet's probe or Prometheus's scrape. The test profile bounds them small
 * (application.properties: 4 per source, 12 in all, 3 s to the first request, 4 s idle).
 */
@QuarkusTest
class EndpointFloodTest {

    static final int PROBES = 55021;
    static final int METRICS = 55020;
    static final int PER_SOURCE = 4;
    static final int TOTAL = 12;

    private final List<Socket> opened = new ArrayList<>();

    @Inject
    EndpointListeners listeners;

    @AfterEach
    void closeAll() throws IOException {
        for (Socket s : opened) {
            s.close();
        }
    }

    @Test
    void oneSourceHoldsNoMoreThanItsShareOfTheProbePort() throws Exception {
        floodFromOneSource(PROBES, "127.0.0.21", "probes");
    }

    @Test
    void oneSourceHoldsNoMoreThanItsShareOfTheMetricsPort() throws Exception {
        floodFromOneSource(METRICS, "127.0.0.22", "metrics");
    }

    private void floodFromOneSource(int port, String source, String listener) throws Exception {
        try (LogCapture log = new LogCapture("dev.ambient.net")) {
            List<Socket> flood = open(source, port, 3 * PER_SOURCE);
            // Beyond the per-source bound each connection is closed at once, before a byte is read.
            long closed = closedAfter(flood, 1000);
            assertEquals(3 * PER_SOURCE - PER_SOURCE, closed,
                    "connections the server closed at once out of " + flood.size() + " idle ones from " + source);

            // Meanwhile the kubelet (another source) is answered, and so is Prometheus.
            assertTrue(get("127.0.0.31", PROBES, "/healthz/ready").startsWith("HTTP/1.1 200"));
            String scrape = get("127.0.0.32", METRICS, "/metrics");
            assertTrue(scrape.startsWith("HTTP/1.1 200"), scrape.lines().findFirst().orElse(""));
            assertTrue(refusals(scrape, listener, "per_source") >= 2 * PER_SOURCE, scrape.lines()
                    .filter(l -> l.startsWith("ztunnel_listener_refusals_total")).toList().toString());
            log.await("a refusal line", l -> l.contains(listener) && l.contains(source)
                    && l.contains("per source"));

            // The admitted ones that never send a request go after the (test profile's 3 s) first-request timeout.
            long held = flood.stream().filter(s -> closedWithin(s, 10_000)).count();
            assertEquals(3 * PER_SOURCE, held, "every connection closed in the end");
            assertTrue(refusals(get("127.0.0.32", METRICS, "/metrics"), listener, "first_request_timeout") >= PER_SOURCE);

            // The source is served again once its connections are gone.
            assertTrue(get(source, port, port == PROBES ? "/healthz/live" : "/metrics").startsWith("HTTP/1.1 200"));
        }
    }

    @Test
    void aKeepAliveScrapeConnectionLivesUntilTheIdleTimeout() throws Exception {
        Socket scraper = open("127.0.0.51", METRICS, 1).get(0);
        long start = System.nanoTime();
        for (int i = 0; i < 4; i++) {
            // A scrape every second on the same connection (Prometheus's keep-alive), each answered.
            assertTrue(keepAliveGet(scraper, "/metrics").startsWith("HTTP/1.1 200"));
            Thread.sleep(1000);
        }
        long idleFrom = System.nanoTime();
        assertTrue(closedWithin(scraper, 10_000), "an idle connection is closed");
        long idleMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - idleFrom) + 1000;
        assertTrue(idleMillis >= 3500, "closed after " + idleMillis + " ms idle, before the 4 s idle timeout");
        assertTrue(TimeUnit.NANOSECONDS.toMillis(idleFrom - start) > 3000, "it outlived the 3 s first-request timeout");
    }

    @Test
    void aNewSourceIsServedWhenOthersFillTheTotal() throws Exception {
        // Other tests' connections gone first, then three sources take every place (4 each, 12 in all).
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (listeners.connections("probes") > 0 && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertEquals(0, listeners.connections("probes"), "connections of other tests still held");
        List<Socket> held = new ArrayList<>();
        for (String source : List.of("127.0.0.41", "127.0.0.42", "127.0.0.43")) {
            held.addAll(open(source, PROBES, PER_SOURCE));
        }
        assertEquals(0, closedAfter(held, 500), "all 12 admitted");
        assertEquals(TOTAL, listeners.connections("probes"));

        // The kubelet, a fourth source, still gets its answer: one of the largest holders' places is taken.
        assertTrue(get("127.0.0.44", PROBES, "/healthz/ready").startsWith("HTTP/1.1 200"));
        String scrape = get("127.0.0.45", METRICS, "/metrics");
        assertTrue(refusals(scrape, "probes", "displaced") >= 1, scrape.lines()
                .filter(l -> l.startsWith("ztunnel_listener_refusals_total")).toList().toString());
    }

    private List<Socket> open(String source, int port, int count) throws IOException {
        List<Socket> sockets = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            Socket s = new Socket();
            opened.add(s);
            s.bind(new InetSocketAddress(InetAddress.getByName(source), 0));
            s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 2000);
            sockets.add(s);
        }
        return sockets;
    }

    /** How many of {@code sockets} the server closed within {@code millis} (well within the first-request timeout). */
    private static long closedAfter(List<Socket> sockets, long millis) throws InterruptedException {
        Thread.sleep(millis);
        return sockets.stream().filter(s -> closedWithin(s, 20)).count();
    }

    /** True when the server closed (FIN or RST) within {@code millis}; false when it kept it open. */
    private static boolean closedWithin(Socket s, int millis) {
        try {
            s.setSoTimeout(millis);
            int read = s.getInputStream().read();
            return read < 0;
        } catch (SocketTimeoutException e) {
            return false;
        } catch (IOException e) {
            return true;
        }
    }

    /** One HTTP/1.1 request with Connection: close, from {@code source}; the whole answer. */
    private String get(String source, int port, String path) throws IOException {
        try (Socket s = new Socket()) {
            s.bind(new InetSocketAddress(InetAddress.getByName(source), 0));
            s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 2000);
            s.setSoTimeout((int) TimeUnit.SECONDS.toMillis(5));
            OutputStream out = s.getOutputStream();
            out.write(("GET " + path + " HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\nConnection: close\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = s.getInputStream();
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    /** One keep-alive request on an open connection; the status line and headers, the body read and dropped. */
    private static String keepAliveGet(Socket s, String path) throws IOException {
        s.setSoTimeout(5000);
        s.getOutputStream().write(("GET " + path + " HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII));
        InputStream in = s.getInputStream();
        StringBuilder head = new StringBuilder();
        while (!head.toString().endsWith("\r\n\r\n")) {
            int b = in.read();
            if (b < 0) {
                throw new IOException("closed mid-response: " + head);
            }
            head.append((char) b);
        }
        String length = head.toString().lines().filter(l -> l.toLowerCase().startsWith("content-length:"))
                .findFirst().orElseThrow(() -> new IOException("no content-length: " + head));
        in.readNBytes(Integer.parseInt(length.substring(length.indexOf(':') + 1).trim()));
        return head.toString();
    }

    private static double refusals(String scrape, String listener, String limit) {
        return scrape.lines()
                .filter(l -> l.startsWith("ztunnel_listener_refusals_total{")
                        && l.contains("listener=\"" + listener + "\"") && l.contains("limit=\"" + limit + "\""))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
                .sum();
    }
}
