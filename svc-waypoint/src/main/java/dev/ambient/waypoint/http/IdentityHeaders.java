package dev.ambient.waypoint.http;

import dev.ambient.identity.SpiffeId;
import io.netty.handler.codec.http.HttpHeaders;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Request headers that speak for the client's identity are the waypoint's to write, never the
 * client's, since the application may believe them: {@code x-forwarded-client-cert} is replaced
 * by one the waypoint vouches for (Envoy's SANITIZE_SET: {@code By} this waypoint, {@code Hash}
 * of the verified peer certificate, {@code URI} its SPIFFE id); {@code x-envoy-*} headers, which
 * Envoy proxies believe only from their own kind, are removed; the client's address is appended
 * to {@code x-forwarded-for} (its last element is the one the waypoint vouches for). Done before
 * policy, so a {@code request.headers[...]} condition sees what the application will get.
 */
public final class IdentityHeaders {

    public static final String XFCC = "x-forwarded-client-cert";

    private IdentityHeaders() {
    }

    /** @param peerCertificateSha256 hex SHA-256 of the peer's DER certificate, or null when unknown */
    public static void sanitize(HttpHeaders h, SpiffeId waypoint, SpiffeId peer, String peerCertificateSha256,
            String clientAddress) {
        h.remove(XFCC);
        if (peer != null) {
            h.set(XFCC, "By=" + waypoint.uri() + (peerCertificateSha256 == null ? "" : ";Hash=" + peerCertificateSha256)
                    + ";URI=" + peer.uri());
        }
        List<String> envoy = new ArrayList<>();
        for (Map.Entry<String, String> e : h) {
            if (e.getKey().regionMatches(true, 0, "x-envoy-", 0, 8)) {
                envoy.add(e.getKey());
            }
        }
        envoy.forEach(h::remove);
        List<String> xff = h.getAll("x-forwarded-for");
        h.set("x-forwarded-for", xff.isEmpty() ? clientAddress : String.join(", ", xff) + ", " + clientAddress);
    }
}
