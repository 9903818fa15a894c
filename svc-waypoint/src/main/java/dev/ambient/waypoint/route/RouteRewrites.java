package dev.ambient.waypoint.route;

import dev.ambient.proto.l7.PathRewrite;
import dev.ambient.proto.l7.PrefixRewrite;
import dev.ambient.proto.l7.Redirect;
import dev.ambient.proto.l7.UrlRewrite;
import java.util.regex.Pattern;

/**
 * The Gateway API's RequestRedirect and URLRewrite on a request target, as pure functions.
 *
 * <p>Prefix replacement follows the table in the Gateway API's HTTPPathModifier: the matched
 * prefix (whole path segments) is replaced, a trailing "/" of either side does not double, an
 * empty or "/" replacement removes the prefix, and an empty result is "/". The query stays.
 */
public final class RouteRewrites {

    private static final Pattern PLAIN_HOST = Pattern.compile("[A-Za-z0-9.\\-]+(:[0-9]{1,5})?|\\[[0-9A-Fa-f:.]+\\](:[0-9]{1,5})?");

    private RouteRewrites() {
    }

    /** The request target (path and query) the application receives. */
    public static String rewrittenTarget(UrlRewrite rewrite, String target) {
        if (!rewrite.hasPath()) {
            return target;
        }
        int q = target.indexOf('?');
        String path = q < 0 ? target : target.substring(0, q);
        String query = q < 0 ? "" : target.substring(q);
        return path(rewrite.getPath(), path) + query;
    }

    /** A path after a path change of either filter. */
    public static String path(PathRewrite change, String path) {
        return switch (change.getKindCase()) {
            case FULL_PATH -> change.getFullPath();
            case PREFIX -> replacePrefix(change.getPrefix(), path);
            case KIND_NOT_SET -> path;
        };
    }

    static String replacePrefix(PrefixRewrite p, String path) {
        String prefix = withoutTrailingSlash(p.getMatchedPrefix());
        String replacement = withoutTrailingSlash(p.getReplacement());
        if (prefix.isEmpty() || !path.startsWith(prefix)) {
            // Prefix "/" matches everything; a path the match did not cover is left alone.
            return prefix.isEmpty() ? orRoot(replacement + path) : path;
        }
        return orRoot(replacement + path.substring(prefix.length()));
    }

    /**
     * The Location of a redirect.
     *
     * @param target the request target (path and query) as forwarded
     * @param host the request's Host (or :authority), possibly with a port; null if it had none
     * @param fallbackHost the service's host name, when the request named none
     * @param servicePort the service port the request came to (the "listener" of a waypoint)
     */
    public static String location(Redirect r, String target, String host, String fallbackHost, int servicePort) {
        String scheme = r.getScheme().isEmpty() ? "http" : r.getScheme();
        // A Host that is not a plain name or address (userinfo, a path) is not echoed into a Location.
        String hostname = !r.getHostname().isEmpty() ? r.getHostname()
                : host == null || !PLAIN_HOST.matcher(host).matches() ? fallbackHost : withoutPort(host);
        int port;
        if (r.getPort() != 0) {
            port = r.getPort();
        } else if (!r.getScheme().isEmpty()) {
            port = wellKnown(scheme);
        } else {
            port = servicePort;
        }
        int q = target.indexOf('?');
        String path = q < 0 ? target : target.substring(0, q);
        String query = q < 0 ? "" : target.substring(q);
        String newPath = r.hasPath() ? path(r.getPath(), path) : path;
        String authority = port == wellKnown(scheme) ? hostname : hostname + ":" + port;
        return scheme + "://" + authority + newPath + query;
    }

    private static int wellKnown(String scheme) {
        return scheme.equals("https") ? 443 : 80;
    }

    /** "host", "host:port", "[v6]" or "[v6]:port" without the port. */
    static String withoutPort(String host) {
        if (host.startsWith("[")) {
            int end = host.indexOf(']');
            return end < 0 ? host : host.substring(0, end + 1);
        }
        int colon = host.lastIndexOf(':');
        return colon < 0 ? host : host.substring(0, colon);
    }

    private static String withoutTrailingSlash(String s) {
        return s.endsWith("/") ? s.substring(0, s.length() - 1) : s;
    }

    private static String orRoot(String path) {
        return path.isEmpty() ? "/" : path;
    }
}
