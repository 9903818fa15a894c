package dev.ambient.waypoint;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * An application on a raw socket that writes down exactly what reached it: every request line as
 * it came off the wire (so a test sees the very path the application got), the headers, and any
 * bytes that were not an HTTP/1.1 request at all. It answers 200 with the request line as body,
 * keeping the connection alive (or, for {@code /status/<anything>}, that as the status code);
 * anything else it records and hangs up on.
 */
final class RecordingBackend implements AutoCloseable {

    /** One request as the application received it; header names lower-cased, repeated ones joined by ", ". */
    record Received(String requestLine, Map<String, String> headers, int bodyBytes) {
        String target() {
            return requestLine.split(" ")[1];
        }
    }

    private final ServerSocket server;
    final List<Received> requests = Collections.synchronizedList(new ArrayList<>());
    /** Connections whose first bytes were not an HTTP/1.1 request, as text. */
    final List<String> notHttp = Collections.synchronizedList(new ArrayList<>());

    RecordingBackend(InetSocketAddress address) throws IOException {
        server = new ServerSocket();
        server.setReuseAddress(true);
        server.bind(address);
        Thread.ofVirtual().start(this::acceptLoop);
    }

    /** Whether any request or stray bytes that reached the application contain {@code text}. */
    boolean saw(String text) {
        synchronized (requests) {
            if (requests.stream().anyMatch(r -> r.requestLine().contains(text))) {
                return true;
            }
        }
        synchronized (notHttp) {
            return notHttp.stream().anyMatch(s -> s.contains(text));
        }
    }

    int count() {
        return requests.size() + notHttp.size();
    }

    private void acceptLoop() {
        while (!server.isClosed()) {
            try {
                Socket s = server.accept();
                Thread.ofVirtual().start(() -> serve(s));
            } catch (IOException e) {
                return;
            }
        }
    }

    private void serve(Socket s) {
        try (s) {
            InputStream in = new java.io.BufferedInputStream(s.getInputStream());
            OutputStream out = s.getOutputStream();
            while (true) {
                String head = readHead(in);
                if (head == null) {
                    return;
                }
                String[] lines = head.split("\r\n");
                if (!lines[0].matches("[A-Z]+ \\S+ HTTP/1\\.[01]")) {
                    notHttp.add(head + new String(in.readNBytes(in.available()), StandardCharsets.ISO_8859_1));
                    return;
                }
                Map<String, String> headers = new TreeMap<>();
                for (int i = 1; i < lines.length; i++) {
                    int colon = lines[i].indexOf(':');
                    if (colon > 0) {
                        headers.merge(lines[i].substring(0, colon).trim().toLowerCase(java.util.Locale.ROOT),
                                lines[i].substring(colon + 1).trim(), (a, b) -> a + ", " + b);
                    }
                }
                int length = Integer.parseInt(headers.getOrDefault("content-length", "0"));
                in.readNBytes(length);
                requests.add(new Received(lines[0], headers, length));
                byte[] body = lines[0].getBytes(StandardCharsets.ISO_8859_1);
                String target = lines[0].split(" ")[1];
                String status = target.startsWith("/status/") ? target.substring(8) + " Chosen" : "200 OK";
                out.write(("HTTP/1.1 " + status + "\r\ncontent-type: text/plain\r\ncontent-length: " + body.length
                        + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
                out.write(body);
                out.flush();
            }
        } catch (IOException e) {
            // the waypoint went away
        }
    }

    /** The bytes up to an empty line (at most 64 KiB), or what came when the peer paused on non-text; null at EOF. */
    private static String readHead(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int tail = 0;
        boolean text = true;
        int c;
        while ((c = in.read()) >= 0) {
            b.write(c);
            tail = tail << 8 | c;
            text &= (c >= 0x20 && c <= 0x7e) || c == '\r' || c == '\n';
            if (tail == 0x0d0a0d0a) {
                byte[] a = b.toByteArray();
                return new String(a, 0, a.length - 4, StandardCharsets.ISO_8859_1);
            }
            if (b.size() > 65536 || (!text && in.available() == 0)) {
                return b.toString(StandardCharsets.ISO_8859_1);
            }
        }
        return b.size() == 0 ? null : b.toString(StandardCharsets.ISO_8859_1);
    }

    @Override
    public void close() throws IOException {
        server.close();
    }
}
