package dev.ambient.waypoint.telemetry;

import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Pattern;

/**
 * W3C trace context: the waypoint is a hop of the trace, so a valid incoming traceparent keeps its
 * trace id and flags and gets this hop's span id as parent; a missing or malformed one is replaced
 * by a new trace, sampled.
 */
public final class TraceContext {

    private static final Pattern VALID = Pattern.compile("00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}");
    private static final String ZERO_TRACE = "00000000000000000000000000000000";

    private TraceContext() {
    }

    public static String next(String incoming) {
        String span = randomHex(8);
        if (incoming != null && VALID.matcher(incoming).matches() && !incoming.substring(3, 35).equals(ZERO_TRACE)) {
            return "00-" + incoming.substring(3, 35) + "-" + span + "-" + incoming.substring(53, 55);
        }
        return "00-" + randomHex(16) + "-" + span + "-01";
    }

    /** The trace id of a traceparent produced by {@link #next}. */
    public static String traceId(String traceparent) {
        return traceparent.substring(3, 35);
    }

    private static String randomHex(int bytes) {
        byte[] b = new byte[bytes];
        ThreadLocalRandom.current().nextBytes(b);
        if (b[0] == 0) {
            b[0] = 1; // all-zero ids are invalid
        }
        return HexFormat.of().formatHex(b);
    }
}
