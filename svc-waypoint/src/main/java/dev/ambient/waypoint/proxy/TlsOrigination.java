package dev.ambient.waypoint.proxy;

import dev.ambient.proto.workload.OriginatedTls;
import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;

/**
 * TLS the waypoint originates to an endpoint outside the mesh (DestinationRule {@code tls.mode:
 * SIMPLE}): TLS 1.3 or 1.2, the server name sent as SNI, and the server's certificate verified
 * against the trusted CAs (the rule's {@code caCertificates} file, else the JDK's trust store) and
 * against that name, as a browser would. Only a rule that says {@code insecureSkipVerify: true}
 * turns verification off. A failed verification fails the handshake: the request is answered 503,
 * never sent in clear or to an unverified server.
 */
public final class TlsOrigination {

    private static final String[] PROTOCOLS = {"TLSv1.3", "TLSv1.2"};

    /** One client context per trust source; a CA file is read again when it changes. */
    private record ContextKey(String caFile, FileTime modified, boolean insecure) {
    }

    private final Map<ContextKey, SslContext> contexts = new ConcurrentHashMap<>();

    /** The server name to send and verify: the rule's SNI, else the name the endpoint was known by. */
    public static String serverName(OriginatedTls tls, String fallback) {
        return tls.getSni().isEmpty() ? fallback : tls.getSni();
    }

    /**
     * A client handler for one connection; its handshake future tells whether the server proved the
     * name. Fails when the rule's CA file cannot be read (the attempt fails, nothing is sent).
     */
    public SslHandler handler(OriginatedTls tls, String serverName, int port, ByteBufAllocator alloc)
            throws IOException {
        SslContext context = context(tls);
        SslHandler handler = context.newHandler(alloc, serverName, port);
        SSLEngine engine = handler.engine();
        SSLParameters params = engine.getSSLParameters();
        if (!tls.getInsecureSkipVerify()) {
            params.setEndpointIdentificationAlgorithm("HTTPS"); // the certificate must name serverName
        }
        engine.setSSLParameters(params);
        return handler;
    }

    private SslContext context(OriginatedTls tls) throws IOException {
        String caFile = tls.getCaCertificates();
        FileTime modified = caFile.isEmpty() || tls.getInsecureSkipVerify() ? null
                : Files.getLastModifiedTime(Path.of(caFile));
        ContextKey key = new ContextKey(caFile, modified, tls.getInsecureSkipVerify());
        SslContext cached = contexts.get(key);
        if (cached != null) {
            return cached;
        }
        SslContextBuilder b = SslContextBuilder.forClient().sslProvider(SslProvider.JDK).protocols(PROTOCOLS);
        if (tls.getInsecureSkipVerify()) {
            b.trustManager(InsecureTrustManagerFactory.INSTANCE);
        } else if (!caFile.isEmpty()) {
            b.trustManager(Path.of(caFile).toFile());
        } // else the JDK's default trust store
        try {
            SslContext built = b.build();
            contexts.keySet().removeIf(k -> k.caFile().equals(caFile) && !k.equals(key)); // an older version
            contexts.put(key, built);
            return built;
        } catch (SSLException | IllegalArgumentException e) {
            throw new IOException("cannot use caCertificates " + caFile + ": " + e.getMessage(), e);
        }
    }
}
