package dev.ambient.waypoint.http;

import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpHeaders;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Locale;

/**
 * WebSocket's two openings, and how the waypoint turns one into the other: HTTP/1.1
 * {@code Upgrade: websocket} (RFC 6455, answered {@code 101} with {@code Sec-WebSocket-Accept}) and
 * HTTP/2 extended CONNECT with {@code :protocol websocket} (RFC 8441, answered {@code 200}, no
 * key). Inside the waypoint every opening is the HTTP/1.1 form, as Envoy does it; each side's
 * codec translates. Only {@code websocket} is tunnelled (what Istio enables); other upgrades are
 * dropped and the request goes on as plain HTTP.
 */
public final class WebSocketUpgrade {

    public static final String WEBSOCKET = "websocket";
    private static final String GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    private static final SecureRandom RANDOM = new SecureRandom();

    private WebSocketUpgrade() {
    }

    /** The protocol an HTTP/1.1 request asks to switch to ({@code Connection: upgrade} and {@code Upgrade}), lower-cased; null when none. */
    public static String requested(HttpHeaders h) {
        String upgrade = h.get(HttpHeaderNames.UPGRADE);
        if (upgrade == null || !h.containsValue(HttpHeaderNames.CONNECTION, HttpHeaderValues.UPGRADE, true)) {
            return null;
        }
        return upgrade.trim().toLowerCase(Locale.ROOT);
    }

    /** Whether the waypoint tunnels this protocol after an upgrade. */
    public static boolean supported(String protocol) {
        return WEBSOCKET.equals(protocol);
    }

    /** {@code Sec-WebSocket-Accept} for a key (RFC 6455 section 4.2.2). */
    public static String accept(String key) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-1").digest((key.trim() + GUID)
                    .getBytes(StandardCharsets.US_ASCII));
            return Base64.getEncoder().encodeToString(digest);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-1 is missing from this JVM", e);
        }
    }

    /** A fresh {@code Sec-WebSocket-Key}: an HTTP/1.1 endpoint needs one, an HTTP/2 client sends none. */
    public static String newKey() {
        byte[] nonce = new byte[16];
        RANDOM.nextBytes(nonce);
        return Base64.getEncoder().encodeToString(nonce);
    }

    /** Puts the HTTP/1.1 upgrade headers (back) on a request head (hop-by-hop headers were stripped). */
    static void asHttp1Request(HttpHeaders h, String protocol) {
        h.set(HttpHeaderNames.CONNECTION, HttpHeaderValues.UPGRADE);
        h.set(HttpHeaderNames.UPGRADE, protocol);
        if (!h.contains(HttpHeaderNames.SEC_WEBSOCKET_KEY)) {
            h.set(HttpHeaderNames.SEC_WEBSOCKET_KEY, newKey());
        }
        h.remove(HttpHeaderNames.CONTENT_LENGTH);
        h.remove(HttpHeaderNames.TRANSFER_ENCODING);
    }
}
