package dev.ambient.waypoint.http;

import java.util.ArrayDeque;
import java.util.Arrays;

/**
 * The request target as policy and routing see it and as it is forwarded: one and the same
 * string, or the request is refused. Otherwise a DENY on {@code /admin} would miss a
 * {@code /public/../admin} or {@code /public%2F..%2Fadmin} that the application then serves.
 *
 * <p>Absolute-form ({@code http://host/p}) becomes origin-form. A fragment, a control character or
 * a malformed escape is refused. Then, by {@link Normalization} (Istio's meshConfig
 * pathNormalization): BASE decodes escaped unreserved characters ({@code %2E} is a dot,
 * {@code %7E} a tilde), upper-cases the other escapes, reads a backslash as a slash and removes
 * "." and ".." segments (RFC 3986 5.2.4); MERGE_SLASHES also merges repeated slashes;
 * DECODE_AND_MERGE_SLASHES also decodes escaped slashes. Escaped slashes ({@code %2F}, {@code %5C})
 * are handled by {@link EscapedSlashes} (Envoy's path_with_escaped_slashes_action). The query is
 * kept as it came.
 */
public final class RequestTarget {

    /** Istio's meshConfig pathNormalization. */
    public enum Normalization { NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES }

    /** Envoy's path_with_escaped_slashes_action. */
    public enum EscapedSlashes { KEEP_UNCHANGED, REJECT_REQUEST, UNESCAPE_AND_REDIRECT, UNESCAPE_AND_FORWARD }

    /** How this waypoint normalizes (waypoint.http.path-normalization, waypoint.http.escaped-slashes). */
    public record Options(Normalization normalization, EscapedSlashes escapedSlashes) {

        public static Options parse(String normalization, String escapedSlashes) {
            return new Options(parse(Normalization.class, normalization, "waypoint.http.path-normalization"),
                    parse(EscapedSlashes.class, escapedSlashes, "waypoint.http.escaped-slashes"));
        }

        private static <E extends Enum<E>> E parse(Class<E> type, String value, String key) {
            try {
                return Enum.valueOf(type, value.trim().toUpperCase(java.util.Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(key + "=" + value + " is unknown; one of "
                        + Arrays.toString(type.getEnumConstants()), e);
            }
        }

        /** DECODE_AND_MERGE_SLASHES decodes escaped slashes, whatever the escaped-slashes action says. */
        EscapedSlashes slashes() {
            return normalization == Normalization.DECODE_AND_MERGE_SLASHES ? EscapedSlashes.UNESCAPE_AND_FORWARD
                    : escapedSlashes;
        }
    }

    /** What becomes of a request target. */
    public sealed interface Outcome {
    }

    /** Forward {@code target}; policy and routes judge its {@code path} (the target without its query). */
    public record Forward(String target, String path) implements Outcome {
    }

    /** 400, for this reason. */
    public record Reject(String reason) implements Outcome {
    }

    /** 307 to this origin-form target. */
    public record Redirect(String location) implements Outcome {
    }

    private RequestTarget() {
    }

    public static Outcome normalize(String target, Options options) {
        if (target.equals("*")) {
            return new Forward(target, target);
        }
        String t = originForm(target);
        if (t == null) {
            return new Reject("request target is not a path: " + target);
        }
        if (t.indexOf('#') >= 0) {
            return new Reject("fragment in the request target");
        }
        int q = t.indexOf('?');
        String raw = q < 0 ? t : t.substring(0, q);
        String query = q < 0 ? "" : t.substring(q);
        for (int i = 0; i < raw.length(); i++) {
            char c = raw.charAt(i);
            if (c <= 0x20 || c == 0x7f) {
                return new Reject("control character in the path");
            }
        }
        boolean escapedSlash = hasEscapedSlash(raw);
        EscapedSlashes slashes = options.slashes();
        if (escapedSlash && slashes == EscapedSlashes.REJECT_REQUEST) {
            return new Reject("escaped slash (%2F or %5C) in the path");
        }
        boolean unescape = escapedSlash && (slashes == EscapedSlashes.UNESCAPE_AND_FORWARD
                || slashes == EscapedSlashes.UNESCAPE_AND_REDIRECT);
        String path = decode(raw, options.normalization() != Normalization.NONE, unescape);
        if (path == null) {
            return new Reject("malformed percent-encoding in the path");
        }
        if (options.normalization() != Normalization.NONE) {
            path = path.replace('\\', '/');
            if (options.normalization() != Normalization.BASE) {
                path = mergeSlashes(path);
            }
            path = removeDotSegments(path);
        }
        if (unescape && slashes == EscapedSlashes.UNESCAPE_AND_REDIRECT) {
            return new Redirect(path + query);
        }
        return new Forward(path + query, path);
    }

    /** Origin-form of the target (absolute-form loses scheme and authority), or null if neither. */
    private static String originForm(String target) {
        String t = target;
        int scheme = t.indexOf("://");
        if (scheme > 0 && t.substring(0, scheme).chars().allMatch(c -> Character.isLetterOrDigit(c) || c == '+'
                || c == '-' || c == '.')) {
            int slash = t.indexOf('/', scheme + 3);
            int query = t.indexOf('?', scheme + 3);
            if (slash < 0 || (query >= 0 && query < slash)) {
                t = "/" + (query < 0 ? "" : t.substring(query));
            } else {
                t = t.substring(slash);
            }
        }
        return t.startsWith("/") ? t : null;
    }

    private static boolean hasEscapedSlash(String path) {
        for (int i = path.indexOf('%'); i >= 0 && i + 2 < path.length(); i = path.indexOf('%', i + 1)) {
            char a = path.charAt(i + 1);
            char b = Character.toUpperCase(path.charAt(i + 2));
            if ((a == '2' && b == 'F') || (a == '5' && b == 'C')) {
                return true;
            }
        }
        return false;
    }

    /**
     * Checks every escape; decodes unreserved characters (when {@code unreserved}) and escaped
     * slashes (when {@code slashes}); upper-cases the hex of the escapes it keeps. Null if malformed.
     */
    private static String decode(String path, boolean unreserved, boolean slashes) {
        StringBuilder out = new StringBuilder(path.length());
        for (int i = 0; i < path.length(); i++) {
            char c = path.charAt(i);
            if (c != '%') {
                out.append(c);
                continue;
            }
            if (i + 2 >= path.length()) {
                return null;
            }
            int hi = Character.digit(path.charAt(i + 1), 16);
            int lo = Character.digit(path.charAt(i + 2), 16);
            if (hi < 0 || lo < 0) {
                return null;
            }
            char decoded = (char) (hi << 4 | lo);
            boolean isUnreserved = (decoded < 128 && Character.isLetterOrDigit(decoded)) || decoded == '-'
                    || decoded == '.' || decoded == '_' || decoded == '~';
            if ((unreserved && isUnreserved) || (slashes && (decoded == '/' || decoded == '\\'))) {
                out.append(decoded);
            } else if (unreserved) {
                out.append('%').append(Character.toUpperCase(path.charAt(i + 1)))
                        .append(Character.toUpperCase(path.charAt(i + 2)));
            } else {
                out.append(path, i, i + 3);
            }
            i += 2;
        }
        return out.toString();
    }

    /** Runs of '/' as one (a loop, not a regex: this runs on every request). */
    static String mergeSlashes(String path) {
        if (!path.contains("//")) {
            return path;
        }
        StringBuilder out = new StringBuilder(path.length());
        for (int i = 0; i < path.length(); i++) {
            char c = path.charAt(i);
            if (c != '/' || out.isEmpty() || out.charAt(out.length() - 1) != '/') {
                out.append(c);
            }
        }
        return out.toString();
    }

    /** RFC 3986 5.2.4 on an absolute path. */
    static String removeDotSegments(String path) {
        if (path.startsWith("/") && !path.contains("/.")) {
            return path; // no dot segment: nothing to remove (the common case, kept cheap)
        }
        String[] segments = path.split("/", -1);
        ArrayDeque<String> kept = new ArrayDeque<>();
        for (int i = 1; i < segments.length; i++) {
            String s = segments[i];
            boolean last = i == segments.length - 1;
            if (s.equals(".")) {
                if (last) {
                    kept.addLast("");
                }
            } else if (s.equals("..")) {
                kept.pollLast();
                if (last) {
                    kept.addLast("");
                }
            } else {
                kept.addLast(s);
            }
        }
        return "/" + String.join("/", kept);
    }
}
