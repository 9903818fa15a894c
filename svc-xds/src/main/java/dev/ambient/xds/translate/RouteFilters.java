package dev.ambient.xds.translate;

import dev.ambient.proto.l7.HeaderMutation;
import dev.ambient.proto.l7.PathRewrite;
import dev.ambient.proto.l7.PrefixRewrite;
import dev.ambient.proto.l7.Redirect;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.UrlRewrite;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The filters of one HTTPRoute rule, as the Gateway API defines them: RequestHeaderModifier,
 * ResponseHeaderModifier, RequestRedirect, URLRewrite and RequestMirror (read here, its backend
 * resolved by {@link RouteTranslator}). Any other filter type, an unknown field,
 * a value out of its range, a filter type given twice, or redirect and rewrite together is
 * {@link Specs.Invalid} naming the field, and the route is skipped (never half applied).
 *
 * <p>A path change by prefix ({@code ReplacePrefixMatch}) depends on the match it follows, so it
 * is bound per match in {@link #apply}: it needs a PathPrefix match, whose value goes with it.
 *
 * <p>Hostnames and paths written here end up in the request the application receives and in the
 * Location clients follow, so they are held to the Gateway API's formats (no CR/LF, no spaces, no
 * userinfo) and, for paths, to what the waypoint's path normalization would leave: no dot
 * segments, no {@code //}, no encoded slash, backslash or dot. A rewritten path is then as
 * normal as the client's path it is built from, and what policy judges on it is what the
 * application gets.
 */
final class RouteFilters {

    private static final Set<String> FILTER_KEYS = Set.of("type", "requestHeaderModifier", "responseHeaderModifier",
            "requestRedirect", "urlRewrite", "requestMirror");
    private static final Set<String> MIRROR_KEYS = Set.of("backendRef", "percent", "fraction");
    private static final Set<String> MIRROR_REF_KEYS = Set.of("group", "kind", "name", "namespace", "port");
    private static final Set<String> MODIFIER_KEYS = Set.of("set", "add", "remove");
    private static final Set<String> REDIRECT_KEYS = Set.of("scheme", "hostname", "path", "port", "statusCode");
    private static final Set<String> REWRITE_KEYS = Set.of("hostname", "path");
    private static final Set<String> PATH_KEYS = Set.of("type", "replaceFullPath", "replacePrefixMatch");
    private static final Set<Integer> REDIRECT_CODES = Set.of(301, 302, 303, 307, 308);
    /** The Gateway API's PreciseHostname: lower-case RFC 1123 names, no wildcard, no port. */
    private static final Pattern HOSTNAME = Pattern.compile(
            "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
    /** The Gateway API's path characters (RFC 3986 pchar and "/"), percent escapes included. */
    private static final Pattern PATH = Pattern.compile("(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})*");
    private static final Pattern HEADER_NAME = Pattern.compile("[A-Za-z0-9!#$%&'*+\\-.^_`|~]+");

    /** A path change before it is bound to a match. */
    private sealed interface PathChange {
    }

    private record FullPath(String path) implements PathChange {
    }

    private record Prefix(String replacement) implements PathChange {
    }

    /**
     * A RequestMirror as written: its backendRef (resolved against the services by the route
     * translator, which knows them) and the share of requests copied, 0..100.
     */
    record MirrorRef(Map<String, Object> backendRef, double percent, String at) {
    }

    private final List<MirrorRef> mirrors = new ArrayList<>();
    private final List<HeaderMutation> request = new ArrayList<>();
    private final List<HeaderMutation> response = new ArrayList<>();
    private final Set<String> seenTypes = new HashSet<>();
    private Redirect.Builder redirect;
    private PathChange redirectPath;
    private String redirectPathAt;
    private UrlRewrite.Builder rewrite;
    private PathChange rewritePath;
    private String rewritePathAt;

    /** Reads a rule's filters; {@code at} is the rule's field path ("spec.rules[0]"). */
    static RouteFilters read(List<Map<String, Object>> filters, String at) {
        RouteFilters out = new RouteFilters();
        for (int i = 0; i < filters.size(); i++) {
            out.filter(filters.get(i), at + ".filters[" + i + "]");
        }
        if (out.redirect != null && out.rewrite != null) {
            throw new Specs.Invalid(at + ".filters: RequestRedirect and URLRewrite cannot be used together");
        }
        return out;
    }

    /** The rule's RequestMirror filters, in order. */
    List<MirrorRef> mirrors() {
        return mirrors;
    }

    /** Whether the rule answers with a redirect (its backends are then never used). */
    boolean redirects() {
        return redirect != null;
    }

    /**
     * Sets the filters on one match's route.
     *
     * @param pathType the match's path type ("PathPrefix", "Exact", "RegularExpression")
     * @param pathValue the match's path value
     * @param matchAt the match's field path, for errors
     */
    void apply(Route.Builder route, String pathType, String pathValue, String matchAt) {
        route.addAllRequestHeaderMutations(request).addAllResponseHeaderMutations(response);
        if (redirect != null) {
            Redirect.Builder r = redirect.clone();
            if (redirectPath != null) {
                r.setPath(bind(redirectPath, redirectPathAt, pathType, pathValue, matchAt));
            }
            route.setRedirect(r);
        }
        if (rewrite != null) {
            UrlRewrite.Builder r = rewrite.clone();
            if (rewritePath != null) {
                r.setPath(bind(rewritePath, rewritePathAt, pathType, pathValue, matchAt));
            }
            route.setRewrite(r);
        }
    }

    private static PathRewrite bind(PathChange change, String at, String pathType, String pathValue,
            String matchAt) {
        return switch (change) {
            case FullPath f -> PathRewrite.newBuilder().setFullPath(f.path()).build();
            case Prefix p -> {
                if (!pathType.equals("PathPrefix")) {
                    throw new Specs.Invalid(at + ".replacePrefixMatch: needs a PathPrefix match, but " + matchAt
                            + ".path is " + pathType);
                }
                yield PathRewrite.newBuilder().setPrefix(PrefixRewrite.newBuilder().setMatchedPrefix(pathValue)
                        .setReplacement(p.replacement())).build();
            }
        };
    }

    private void filter(Map<String, Object> f, String at) {
        String type = Specs.string(f.get("type"), at + ".type");
        if (type == null) {
            throw new Specs.Invalid(at + ".type: required");
        }
        String key = switch (type) {
            case "RequestHeaderModifier" -> "requestHeaderModifier";
            case "ResponseHeaderModifier" -> "responseHeaderModifier";
            case "RequestRedirect" -> "requestRedirect";
            case "URLRewrite" -> "urlRewrite";
            case "RequestMirror" -> "requestMirror";
            default -> throw new Specs.Invalid(at + ".type: filter type " + type + " is not supported; route skipped");
        };
        Specs.onlyKeys(f, at, FILTER_KEYS);
        for (String other : FILTER_KEYS) {
            if (!other.equals("type") && !other.equals(key) && f.get(other) != null) {
                throw new Specs.Invalid(at + "." + other + ": does not belong to a filter of type " + type);
            }
        }
        if (!seenTypes.add(type) && !type.equals("RequestMirror")) { // several mirrors are allowed
            throw new Specs.Invalid(at + ".type: " + type + " is given twice in one rule");
        }
        if (f.get(key) == null) {
            throw new Specs.Invalid(at + "." + key + ": required for type " + type);
        }
        String fat = at + "." + key;
        Map<String, Object> body = Specs.map(f.get(key), fat);
        switch (type) {
            case "RequestHeaderModifier" -> modifier(body, fat, request);
            case "ResponseHeaderModifier" -> modifier(body, fat, response);
            case "RequestRedirect" -> redirect(body, fat);
            case "RequestMirror" -> mirror(body, fat);
            default -> rewrite(body, fat);
        }
    }

    private static void modifier(Map<String, Object> mod, String at, List<HeaderMutation> out) {
        Specs.onlyKeys(mod, at, MODIFIER_KEYS);
        List<Map<String, Object>> set = Specs.maps(mod.get("set"), at + ".set");
        for (int i = 0; i < set.size(); i++) {
            String hat = at + ".set[" + i + "]";
            out.add(HeaderMutation.newBuilder().setOp(HeaderMutation.Op.SET).setName(headerName(set.get(i), hat))
                    .setValue(headerValue(set.get(i), hat)).build());
        }
        List<Map<String, Object>> add = Specs.maps(mod.get("add"), at + ".add");
        for (int i = 0; i < add.size(); i++) {
            String hat = at + ".add[" + i + "]";
            out.add(HeaderMutation.newBuilder().setOp(HeaderMutation.Op.ADD).setName(headerName(add.get(i), hat))
                    .setValue(headerValue(add.get(i), hat)).build());
        }
        List<String> remove = Specs.strings(mod.get("remove"), at + ".remove");
        for (int i = 0; i < remove.size(); i++) {
            String name = remove.get(i);
            if (!HEADER_NAME.matcher(name).matches()) {
                throw new Specs.Invalid(at + ".remove[" + i + "]: not a header name: '" + name + "'");
            }
            out.add(HeaderMutation.newBuilder().setOp(HeaderMutation.Op.REMOVE).setName(name).build());
        }
    }

    private static String headerName(Map<String, Object> h, String at) {
        Specs.onlyKeys(h, at, Set.of("name", "value"));
        String name = Specs.string(h.get("name"), at + ".name");
        if (name == null) {
            throw new Specs.Invalid(at + ".name: required");
        }
        if (!HEADER_NAME.matcher(name).matches()) {
            throw new Specs.Invalid(at + ".name: not a header name: '" + name + "'");
        }
        return name;
    }

    private static String headerValue(Map<String, Object> h, String at) {
        String value = Specs.string(h.get("value"), at + ".value");
        if (value == null) {
            throw new Specs.Invalid(at + ".value: required");
        }
        if (value.chars().anyMatch(c -> c == '\r' || c == '\n' || c == 0)) {
            throw new Specs.Invalid(at + ".value: CR, LF and NUL are not allowed in a header value");
        }
        return value;
    }

    private void redirect(Map<String, Object> body, String at) {
        Specs.onlyKeys(body, at, REDIRECT_KEYS);
        redirect = Redirect.newBuilder();
        String scheme = Specs.string(body.get("scheme"), at + ".scheme");
        if (scheme != null) {
            if (!scheme.equals("http") && !scheme.equals("https")) {
                throw new Specs.Invalid(at + ".scheme: '" + scheme + "' is not http or https");
            }
            redirect.setScheme(scheme);
        }
        String hostname = hostname(body.get("hostname"), at + ".hostname");
        if (hostname != null) {
            redirect.setHostname(hostname);
        }
        if (body.get("port") != null) {
            redirect.setPort(Specs.port(body.get("port"), at + ".port"));
        }
        Integer code = Specs.integer(body.getOrDefault("statusCode", 302), at + ".statusCode");
        if (!REDIRECT_CODES.contains(code)) {
            throw new Specs.Invalid(at + ".statusCode: " + code + " is not one of 301, 302, 303, 307, 308");
        }
        redirect.setStatusCode(code);
        if (body.get("path") != null) {
            redirectPathAt = at + ".path";
            redirectPath = path(body.get("path"), redirectPathAt);
        }
    }

    private void rewrite(Map<String, Object> body, String at) {
        Specs.onlyKeys(body, at, REWRITE_KEYS);
        rewrite = UrlRewrite.newBuilder();
        String hostname = hostname(body.get("hostname"), at + ".hostname");
        if (hostname != null) {
            rewrite.setHostname(hostname);
        }
        if (body.get("path") != null) {
            rewritePathAt = at + ".path";
            rewritePath = path(body.get("path"), rewritePathAt);
        }
    }

    /** RequestMirror: a backendRef and {@code percent} (0..100) or {@code fraction} (numerator/denominator). */
    private void mirror(Map<String, Object> body, String at) {
        Specs.onlyKeys(body, at, MIRROR_KEYS);
        if (body.get("backendRef") == null) {
            throw new Specs.Invalid(at + ".backendRef: required");
        }
        Map<String, Object> ref = Specs.map(body.get("backendRef"), at + ".backendRef");
        Specs.onlyKeys(ref, at + ".backendRef", MIRROR_REF_KEYS);
        if (body.get("percent") != null && body.get("fraction") != null) {
            throw new Specs.Invalid(at + ": percent and fraction cannot be used together");
        }
        double percent = 100;
        if (body.get("percent") != null) {
            Integer p = Specs.integer(body.get("percent"), at + ".percent");
            if (p < 0 || p > 100) {
                throw new Specs.Invalid(at + ".percent: must be 0..100, got " + p);
            }
            percent = p;
        } else if (body.get("fraction") != null) {
            Map<String, Object> f = Specs.map(body.get("fraction"), at + ".fraction");
            Specs.onlyKeys(f, at + ".fraction", Set.of("numerator", "denominator"));
            Integer numerator = Specs.integer(f.get("numerator"), at + ".fraction.numerator");
            Integer denominator = Specs.integer(f.getOrDefault("denominator", 100), at + ".fraction.denominator");
            if (numerator == null) {
                throw new Specs.Invalid(at + ".fraction.numerator: required");
            }
            if (denominator <= 0 || numerator < 0 || numerator > denominator) {
                throw new Specs.Invalid(at + ".fraction: needs 0 <= numerator <= denominator and denominator > 0, got "
                        + numerator + "/" + denominator);
            }
            percent = 100.0 * numerator / denominator;
        }
        mirrors.add(new MirrorRef(ref, percent, at + ".backendRef"));
    }

    private static String hostname(Object o, String at) {
        String h = Specs.string(o, at);
        if (h == null) {
            return null;
        }
        if (h.length() > 253 || !HOSTNAME.matcher(h).matches()) {
            throw new Specs.Invalid(at + ": '" + h + "' is not a precise host name (lower-case RFC 1123, no port,"
                    + " no wildcard)");
        }
        return h;
    }

    private static PathChange path(Object o, String at) {
        Map<String, Object> p = Specs.map(o, at);
        Specs.onlyKeys(p, at, PATH_KEYS);
        String type = Specs.string(p.get("type"), at + ".type");
        if (type == null) {
            throw new Specs.Invalid(at + ".type: required");
        }
        switch (type) {
            case "ReplaceFullPath" -> {
                if (p.get("replacePrefixMatch") != null) {
                    throw new Specs.Invalid(at + ".replacePrefixMatch: does not belong to type ReplaceFullPath");
                }
                String value = Specs.string(p.get("replaceFullPath"), at + ".replaceFullPath");
                if (value == null) {
                    throw new Specs.Invalid(at + ".replaceFullPath: required for type ReplaceFullPath");
                }
                return new FullPath(pathValue(value, at + ".replaceFullPath"));
            }
            case "ReplacePrefixMatch" -> {
                if (p.get("replaceFullPath") != null) {
                    throw new Specs.Invalid(at + ".replaceFullPath: does not belong to type ReplacePrefixMatch");
                }
                String value = Specs.string(p.get("replacePrefixMatch"), at + ".replacePrefixMatch");
                if (value == null) {
                    throw new Specs.Invalid(at + ".replacePrefixMatch: required for type ReplacePrefixMatch");
                }
                return new Prefix(value.isEmpty() ? value : pathValue(value, at + ".replacePrefixMatch"));
            }
            default -> throw new Specs.Invalid(at + ".type: unknown type '" + type + "'");
        }
    }

    private static String pathValue(String v, String at) {
        if (!v.startsWith("/") || v.length() > 1024 || !PATH.matcher(v).matches()) {
            throw new Specs.Invalid(at + ": '" + v + "' is not an absolute path (at most 1024 characters of "
                    + "RFC 3986 path characters)");
        }
        String lower = v.toLowerCase(Locale.ROOT);
        if (v.contains("//") || lower.contains("%2f") || lower.contains("%5c") || lower.contains("%2e")
                || ("/" + v + "/").contains("/./") || ("/" + v + "/").contains("/../")) {
            throw new Specs.Invalid(at + ": '" + v + "' is not a normalized path (no '//', dot segments or encoded"
                    + " '/', '\\' or '.'): the application would get a path policy did not judge");
        }
        return v;
    }
}
