package dev.ambient.ztunnel.inpod;

import dev.ambient.net.NetworkNamespace;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;

/**
 * TCP clients whose sockets are born inside a pod's network namespace (so the pod's capture rules
 * apply to them, as to the pod's own programs), driven from the test thread.
 */
final class PodClient {

    private PodClient() {
    }

    /** How a connection attempt ended. */
    record Attempt(String outcome, String received, long millis) {
        /** Accepted and then closed or reset by the ztunnel without a byte of answer. */
        boolean refused() {
            return (outcome.equals("reset") || outcome.equals("closed") || outcome.equals("connect refused"))
                    && received.isEmpty();
        }
    }

    /** {@code GET path} over HTTP/1.0 on a new connection from {@code from} (null: the host); the whole answer. */
    static String httpGet(NetworkNamespace from, String ip, int port, String path) throws Exception {
        SocketChannel ch = from == null ? SocketChannel.open() : from.call(SocketChannel::open);
        try (ch) {
            ch.socket().setSoTimeout(10_000);
            ch.socket().connect(new InetSocketAddress(ip, port), 5_000);
            ch.write(java.nio.ByteBuffer.wrap(("GET " + path + " HTTP/1.0\r\n\r\n").getBytes(StandardCharsets.US_ASCII)));
            return new String(ch.socket().getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
        }
    }

    /** Connects from {@code from} to {@code to}, sends a request, and reads until the other side ends it (3 s at most). */
    static Attempt attempt(NetworkNamespace from, InetSocketAddress to) throws Exception {
        long t0 = System.nanoTime();
        SocketChannel ch = from.call(SocketChannel::open);
        StringBuilder received = new StringBuilder();
        String outcome;
        try (ch) {
            ch.socket().setSoTimeout(3_000);
            try {
                ch.socket().connect(to, 3_000);
            } catch (IOException e) {
                return new Attempt("connect refused", "", (System.nanoTime() - t0) / 1_000_000);
            }
            try {
                ch.socket().getOutputStream().write("GET / HTTP/1.0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                InputStream in = ch.socket().getInputStream();
                byte[] buf = new byte[4096];
                for (int n; (n = in.read(buf)) > 0;) {
                    received.append(new String(buf, 0, n, StandardCharsets.US_ASCII));
                }
                outcome = "closed";
            } catch (SocketTimeoutException e) {
                outcome = "timeout";
            } catch (IOException e) {
                outcome = "reset";
            }
        }
        return new Attempt(outcome, received.toString(), (System.nanoTime() - t0) / 1_000_000);
    }
}
