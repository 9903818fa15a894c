package dev.ambient.waypoint.route;

import dev.ambient.proto.l7.HeaderMatch;
import dev.ambient.proto.l7.PathMatch;
import dev.ambient.proto.l7.QueryParamMatch;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.RouteMatch;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.l7.TcpRoute;
import dev.ambient.proto.l7.WeightedBackend;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.QueryStringDecoder;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Pattern;

/**
 * HTTPRoute semantics over a service's route table: the first route (the table is already in
 * Gateway API precedence order) with a holding match wins; path exact / prefix (by whole path
 * segments) / regular expression (whole path), header exact / regular expression, method, query
 * parameters. Weighted backends are picked at random in proportion to their weights.
 */
public final class RouteTable {

    private static final Map<String, Pattern> PATTERNS = new ConcurrentHashMap<>();

    /**
     * What a route is matched against. The path is the forwarded one as it is, escapes and all (as
     * Envoy matches {@code :path}): decoding it here would judge a path the application never gets.
     */
    public record Request(String method, String path, Map<String, List<String>> query, HttpHeaders headers) {
        public static Request of(String method, String target, HttpHeaders headers) {
            int q = target.indexOf('?');
            return new Request(method, q < 0 ? target : target.substring(0, q),
                    new QueryStringDecoder(target).parameters(), headers);
        }
    }

    private RouteTable() {
    }

    /** Whether the table applies to this service port (no ports listed = every port). */
    public static boolean coversPort(ServiceRoutes table, int port) {
        return table.getPortsCount() == 0 || table.getPortsList().contains(port);
    }

    /** Whether HTTP requests to this port are routed by the table (a table of TCPRoutes alone routes no HTTP). */
    public static boolean routesHttp(ServiceRoutes table, int port) {
        return table.getRoutesCount() > 0 && coversPort(table, port);
    }

    /** The TCPRoute for streams to this port: the first listing it, or listing no port. */
    public static Optional<TcpRoute> tcpRoute(ServiceRoutes table, int port) {
        for (TcpRoute r : table.getTcpRoutesList()) {
            if (r.getPortsCount() == 0 || r.getPortsList().contains(port)) {
                return Optional.of(r);
            }
        }
        return Optional.empty();
    }

    public static Optional<Route> match(ServiceRoutes table, Request request) {
        for (Route r : table.getRoutesList()) {
            if (r.getMatchesCount() == 0) {
                return Optional.of(r);
            }
            for (RouteMatch m : r.getMatchesList()) {
                if (matches(m, request)) {
                    return Optional.of(r);
                }
            }
        }
        return Optional.empty();
    }

    static boolean matches(RouteMatch m, Request request) {
        if (m.hasPath() && !pathMatches(m.getPath(), request.path())) {
            return false;
        }
        if (!m.getMethod().isEmpty() && !m.getMethod().equalsIgnoreCase(request.method())) {
            return false;
        }
        for (HeaderMatch h : m.getHeadersList()) {
            String value = request.headers().get(h.getName());
            if (value == null) {
                return false;
            }
            boolean ok = switch (h.getKind()) {
                case REGULAR_EXPRESSION -> pattern(h.getValue()).matcher(value).matches();
                default -> value.equals(h.getValue());
            };
            if (!ok) {
                return false;
            }
        }
        for (QueryParamMatch q : m.getQueryParamsList()) {
            List<String> values = request.query().get(q.getName());
            if (values == null || values.isEmpty() || !values.getFirst().equals(q.getValue())) {
                return false;
            }
        }
        return true;
    }

    static boolean pathMatches(PathMatch p, String path) {
        String v = p.getValue();
        return switch (p.getKind()) {
            case EXACT -> path.equals(v);
            case REGULAR_EXPRESSION -> pattern(v).matcher(path).matches();
            default -> prefixMatches(v.isEmpty() ? "/" : v, path);
        };
    }

    /** Gateway API PathPrefix: matches whole path elements, so "/foo" matches "/foo/bar" but not "/foobar". */
    static boolean prefixMatches(String prefix, String path) {
        String p = prefix.length() > 1 && prefix.endsWith("/") ? prefix.substring(0, prefix.length() - 1) : prefix;
        if (p.equals("/")) {
            return true;
        }
        return path.equals(p) || (path.startsWith(p) && path.charAt(p.length()) == '/');
    }

    /** A backend in proportion to the weights; empty when every weight is 0. */
    public static Optional<WeightedBackend> pickBackend(List<WeightedBackend> backends) {
        long total = 0;
        for (WeightedBackend b : backends) {
            total += b.getWeight();
        }
        if (total == 0) {
            return Optional.empty();
        }
        long x = ThreadLocalRandom.current().nextLong(total);
        for (WeightedBackend b : backends) {
            x -= b.getWeight();
            if (x < 0) {
                return Optional.of(b);
            }
        }
        return Optional.of(backends.getLast());
    }

    private static Pattern pattern(String regex) {
        return PATTERNS.computeIfAbsent(regex, Pattern::compile);
    }
}
