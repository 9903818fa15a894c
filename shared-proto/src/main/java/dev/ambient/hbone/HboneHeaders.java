package dev.ambient.hbone;

import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.util.AsciiString;
import java.net.InetSocketAddress;
import java.util.Optional;

/** The CONNECT request headers HBONE carries: Forwarded, baggage, traceparent. */
public final class HboneHeaders {

    static final AsciiString CONNECT = AsciiString.cached("CONNECT");
    public static final AsciiString FORWARDED = AsciiString.cached("forwarded");
    public static final AsciiString BAGGAGE = AsciiString.cached("baggage");
    public static final AsciiString TRACEPARENT = AsciiString.cached("traceparent");

    private HboneHeaders() {
    }

    /** A CONNECT to {@code target}, saying where the original connection came from. */
    public static Http2Headers connect(InetSocketAddress target, InetSocketAddress originalSource, String baggage) {
        Http2Headers h = new DefaultHttp2Headers().method(CONNECT).authority(Authority.format(target));
        if (originalSource != null) {
            h.add(FORWARDED, "for=\"" + Authority.format(originalSource) + "\"");
        }
        if (baggage != null && !baggage.isEmpty()) {
            h.add(BAGGAGE, baggage);
        }
        return h;
    }

    static Optional<InetSocketAddress> forwardedFor(Http2Headers headers) {
        CharSequence value = headers.get(FORWARDED);
        if (value == null) {
            return Optional.empty();
        }
        for (String part : value.toString().split("[;,]")) {
            String p = part.trim();
            if (p.regionMatches(true, 0, "for=", 0, 4)) {
                String v = p.substring(4).replace("\"", "");
                try {
                    return Optional.of(Authority.parse(v));
                } catch (IllegalArgumentException e) {
                    return Optional.empty();
                }
            }
        }
        return Optional.empty();
    }
}
