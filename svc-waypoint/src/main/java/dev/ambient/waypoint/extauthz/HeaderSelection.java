package dev.ambient.waypoint.extauthz;

import dev.ambient.proto.workload.StringMatch;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Which header names a provider's list selects (Istio's forms on lower-case names: exact,
 * "prefix*", "*suffix", "*"), and which names an authorizer may never set: the message's framing
 * and hop-by-hop headers, which would let it corrupt the exchange rather than decide it.
 */
final class HeaderSelection {

    private static final Set<String> NEVER = Set.of("content-length", "transfer-encoding", "connection",
            "keep-alive", "upgrade", "te", "trailer", "proxy-connection", "host", "http2-settings");

    private static final Pattern TOKEN = Pattern.compile("[!#$%&'*+.^_`|~0-9a-z-]+");

    private HeaderSelection() {
    }

    static boolean selects(List<StringMatch> list, String name) {
        String n = name.toLowerCase(Locale.ROOT);
        for (StringMatch m : list) {
            boolean hit = switch (m.getMatchTypeCase()) {
                case EXACT -> n.equals(m.getExact());
                case PREFIX -> n.startsWith(m.getPrefix());
                case SUFFIX -> n.endsWith(m.getSuffix());
                case PRESENCE -> true;
                case MATCHTYPE_NOT_SET -> false;
            };
            if (hit) {
                return true;
            }
        }
        return false;
    }

    /** Whether an authorizer's header may be passed on (to the upstream request or the client's response). */
    static boolean passable(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        return TOKEN.matcher(n).matches() && !NEVER.contains(n);
    }

    /** The same, and a value without control characters (no header splitting through an authorizer). */
    static boolean passable(String name, String value) {
        return passable(name) && value.chars().allMatch(c -> c == '\t' || (c >= ' ' && c != 127));
    }
}
