package dev.ambient.waypoint.extauthz;

import dev.ambient.proto.l7.ExtAuthzGrpc;
import dev.ambient.proto.l7.ExtAuthzHttp;
import dev.ambient.proto.l7.ExtAuthzProvider;

/**
 * A provider's includeRequestBodyInCheck (Envoy's with_request_body): hold up to {@code maxBytes}
 * of the request's body before asking; a longer body is refused with 413 unless
 * {@code allowPartial}, when its first {@code maxBytes} are sent; {@code packAsBytes} puts it in a
 * gRPC check's raw_body instead of its text body.
 */
public record BodySettings(int maxBytes, boolean allowPartial, boolean packAsBytes) {

    /** The provider's body setting, or null when its checks carry no body. */
    public static BodySettings of(ExtAuthzProvider p) {
        BodySettings s = switch (p.getKindCase()) {
            case HTTP -> {
                ExtAuthzHttp h = p.getHttp();
                yield new BodySettings(h.getMaxRequestBytes(), h.getAllowPartialMessage(), h.getPackAsBytes());
            }
            case GRPC -> {
                ExtAuthzGrpc g = p.getGrpc();
                yield new BodySettings(g.getMaxRequestBytes(), g.getAllowPartialMessage(), g.getPackAsBytes());
            }
            case KIND_NOT_SET -> null;
        };
        return s == null || s.maxBytes() <= 0 ? null : s;
    }
}
