package dev.ambient.waypoint.extauthz;

import io.netty.handler.codec.http.HttpHeaders;
import java.net.InetSocketAddress;

/**
 * What an authorizer is asked about: the request as the waypoint judged it (path normalized,
 * identity headers already the waypoint's), and who sent it where.
 *
 * @param pathAndQuery the request target the application would get
 * @param headers the request's headers; read on the calling thread only (copied into the check)
 * @param sourcePrincipal the client's SPIFFE id URI, or "" when unauthenticated
 * @param destinationPrincipal this waypoint's SPIFFE id URI
 * @param body the body to send, held as the provider's includeRequestBodyInCheck asks; null for none
 */
public record CheckInput(String method, String pathAndQuery, String host, String scheme, String protocol,
        HttpHeaders headers, InetSocketAddress source, String sourcePrincipal, InetSocketAddress destination,
        String destinationPrincipal, CheckBody body) {
}
