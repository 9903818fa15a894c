package dev.ambient.waypoint.http;

import io.netty.buffer.Unpooled;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import java.nio.charset.StandardCharsets;

/**
 * gRPC as the waypoint sees it: which requests are gRPC ({@code content-type: application/grpc...},
 * the {@code request_protocol="grpc"} label), the status a call ended with (the
 * {@code grpc_response_status} label), and the answers the waypoint gives by itself (policy,
 * routing, timeouts, upstream failures) in gRPC's trailers-only form: HTTP 200 with
 * {@code grpc-status} mapped from the HTTP status as gRPC's HTTP-to-gRPC table says (403 is 7
 * PERMISSION_DENIED, 503 is 14 UNAVAILABLE, ...), so a gRPC client sees a status, not a protocol error.
 */
final class Grpc {

    static final String STATUS = "grpc-status";
    static final String MESSAGE = "grpc-message";

    private Grpc() {
    }

    static boolean isGrpc(HttpHeaders requestHeaders) {
        String type = requestHeaders.get(HttpHeaderNames.CONTENT_TYPE);
        return type != null && type.regionMatches(true, 0, "application/grpc", 0, 16);
    }

    /** gRPC's status for an HTTP status (https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md). */
    static int fromHttp(int httpStatus) {
        return switch (httpStatus) {
            case 400 -> 13; // INTERNAL
            case 401 -> 16; // UNAUTHENTICATED
            case 403 -> 7; // PERMISSION_DENIED
            case 404 -> 12; // UNIMPLEMENTED
            case 429, 502, 503, 504 -> 14; // UNAVAILABLE
            default -> 2; // UNKNOWN
        };
    }

    /** The trailers-only answer: headers that end the stream, with the status and its message. */
    static FullHttpResponse localReply(int httpStatus, String message) {
        FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK,
                Unpooled.EMPTY_BUFFER);
        r.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/grpc");
        r.headers().set(STATUS, Integer.toString(fromHttp(httpStatus)));
        if (!message.isEmpty()) {
            r.headers().set(MESSAGE, percentEncode(message));
        }
        r.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, 0);
        return r;
    }

    /** gRPC's percent-encoding of grpc-message: printable ASCII but '%' as is, the rest %XX of UTF-8. */
    static String percentEncode(String message) {
        StringBuilder out = new StringBuilder(message.length());
        for (byte b : message.getBytes(StandardCharsets.UTF_8)) {
            int c = b & 0xff;
            if (c >= 0x20 && c <= 0x7e && c != '%') {
                out.append((char) c);
            } else {
                out.append('%').append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
                        .append(Character.toUpperCase(Character.forDigit(c & 0xf, 16)));
            }
        }
        return out.toString();
    }

    /** The grpc-status in these headers (trailers, or the head of a trailers-only response), or null. */
    static String status(HttpHeaders headers) {
        String s = headers.get(STATUS);
        // Bounded label values: a status is a small number, anything else is not one.
        return s != null && s.length() <= 2 && s.chars().allMatch(Character::isDigit) ? s : null;
    }
}
