package dev.ambient.waypoint.http;

/**
 * The request target as policy sees it and as it is forwarded, one and the same: absolute-form
 * ({@code http://host/p}) becomes origin-form, percent-encoded unreserved characters are decoded
 * ({@code %2E} is a dot), and "." and ".." segments are removed (RFC 3986 5.2.4). Otherwise a
 * DENY on {@code /admin*} would miss {@code /public/../admin} that the application then serves.
 * Other escapes, {@code %2F} included, are kept as they are (upper-cased).
 */
public final class RequestTarget {

    private RequestTarget() {
    }

    /** The normalised target, or null when it is neither a path nor absolute-form ("*" stays "*"). */
    public static String normalize(String target) {
        if (target.equals("*")) {
            return target;
        }
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
        if (!t.startsWith("/")) {
            return null;
        }
        int q = t.indexOf('?');
        String path = q < 0 ? t : t.substring(0, q);
        String query = q < 0 ? "" : t.substring(q);
        String decoded = decodeUnreserved(path);
        return decoded == null ? null : removeDotSegments(decoded) + query;
    }

    private static String decodeUnreserved(String path) {
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
            if (Character.isLetterOrDigit(decoded) && decoded < 128 || decoded == '-' || decoded == '.'
                    || decoded == '_' || decoded == '~') {
                out.append(decoded);
            } else {
                out.append('%').append(Character.toUpperCase(path.charAt(i + 1)))
                        .append(Character.toUpperCase(path.charAt(i + 2)));
            }
            i += 2;
        }
        return out.toString();
    }

    /** RFC 3986 5.2.4 on an absolute path. */
    static String removeDotSegments(String path) {
        String[] segments = path.split("/", -1);
        java.util.ArrayDeque<String> kept = new java.util.ArrayDeque<>();
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
