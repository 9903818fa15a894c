package dev.ambient.waypoint;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;

/**
 * A client on a plain socket that writes whatever bytes a test wants, when it wants, and reads
 * HTTP/1.1 responses or the connection's end: the shape of a hostile client (a pause before the
 * first byte, bytes that are not HTTP, headers trickled byte by byte, a body that never ends).
 */
final class RawClient implements AutoCloseable {

    private final Socket socket = new Socket();
    private final InputStream in;

    RawClient(InetSocketAddress to) throws IOException {
        socket.connect(to, 5_000);
        socket.setSoTimeout(15_000);
        in = socket.getInputStream();
    }

    RawClient send(String text) throws IOException {
        return send(text.getBytes(StandardCharsets.ISO_8859_1));
    }

    RawClient send(byte[] bytes) throws IOException {
        socket.getOutputStream().write(bytes);
        socket.getOutputStream().flush();
        return this;
    }

    /** One response: the status line, then the body after a blank line; null when the connection ends first. */
    String response() throws IOException {
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        int tail = 0;
        int c;
        while (tail != 0x0d0a0d0a) {
            c = in.read();
            if (c < 0) {
                return null;
            }
            head.write(c);
            tail = tail << 8 | c;
        }
        String h = head.toString(StandardCharsets.ISO_8859_1);
        int length = 0;
        for (String line : h.split("\r\n")) {
            if (line.toLowerCase(java.util.Locale.ROOT).startsWith("content-length:")) {
                length = Integer.parseInt(line.substring(15).trim());
            }
        }
        String body = new String(in.readNBytes(length), StandardCharsets.ISO_8859_1);
        return h.substring(0, h.indexOf("\r\n")) + "\n\n" + body;
    }

    /** The status code of the next response, or -1 when the connection ends first. */
    int status() throws IOException {
        String r = response();
        return r == null ? -1 : Integer.parseInt(r.substring(9, 12));
    }

    /** The status code of a response that comes within {@code millis}, else null (then use this client no more). */
    Integer statusWithin(int millis) throws IOException {
        socket.setSoTimeout(millis);
        try {
            return status();
        } catch (SocketTimeoutException e) {
            return null;
        } finally {
            socket.setSoTimeout(15_000);
        }
    }

    /**
     * Reads (and drops) until the connection ends; returns the milliseconds that took, or -1 if it
     * was still open after {@code maxMillis}. What was read goes to {@code seen}.
     */
    long millisUntilClosed(long maxMillis, StringBuilder seen) throws IOException {
        long start = System.nanoTime();
        long deadline = start + maxMillis * 1_000_000;
        byte[] buf = new byte[8192];
        while (System.nanoTime() < deadline) {
            socket.setSoTimeout((int) Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
            try {
                int n = in.read(buf);
                if (n < 0) {
                    return (System.nanoTime() - start) / 1_000_000;
                }
                seen.append(new String(buf, 0, n, StandardCharsets.ISO_8859_1));
            } catch (SocketTimeoutException e) {
                return -1;
            } catch (IOException reset) {
                return (System.nanoTime() - start) / 1_000_000;
            }
        }
        return -1;
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
