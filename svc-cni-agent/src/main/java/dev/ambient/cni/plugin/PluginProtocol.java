package dev.ambient.cni.plugin;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The few bytes the CNI plugin and the agent exchange over the plugin socket: the request is
 * {@code key=value} lines, the answer a status line ({@code ok}, {@code skip} or {@code error})
 * and a message line; each side writes one message and shuts its output down. Plain text so the
 * plugin needs no library (it starts for every pod), and one can talk to the agent with socat.
 */
public final class PluginProtocol {

    /** Far more than a request ever holds; a peer sending more is cut off. */
    static final int MAX_MESSAGE = 16 * 1024;

    private PluginProtocol() {
    }

    public static String encode(Map<String, String> fields) {
        StringBuilder b = new StringBuilder();
        fields.forEach((k, v) -> {
            if (k.contains("=") || k.contains("\n") || v.contains("\n")) {
                throw new IllegalArgumentException("field " + k + " cannot be sent: contains a newline or '='");
            }
            b.append(k).append('=').append(v).append('\n');
        });
        return b.toString();
    }

    public static Map<String, String> decode(String text) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String line : text.split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0) {
                out.put(line.substring(0, eq), line.substring(eq + 1));
            }
        }
        return out;
    }

    public static void write(SocketChannel ch, String text) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8));
        while (buf.hasRemaining()) {
            ch.write(buf);
        }
        ch.shutdownOutput();
    }

    /** Reads until the peer shuts its side down. */
    public static String read(SocketChannel ch) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteBuffer buf = ByteBuffer.allocate(4096);
        while (ch.read(buf) >= 0) {
            buf.flip();
            out.write(buf.array(), 0, buf.limit());
            buf.clear();
            if (out.size() > MAX_MESSAGE) {
                throw new IOException("message larger than " + MAX_MESSAGE + " bytes");
            }
        }
        return out.toString(StandardCharsets.UTF_8);
    }
}
