package dev.ambient.xds.translate;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.ambient.proto.l7.ExtAuthzGrpc;
import dev.ambient.proto.l7.ExtAuthzHttp;
import dev.ambient.proto.l7.ExtAuthzProvider;
import dev.ambient.proto.workload.StringMatch;
import io.fabric8.kubernetes.api.model.ConfigMap;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The mesh configuration as Istio keeps it: the ConfigMap {@code istio} in the control plane's
 * (root) namespace, whose key {@code mesh} holds meshConfig as YAML. Of it the mesh reads
 * {@code extensionProviders} of kind {@code envoyExtAuthzHttp} and {@code envoyExtAuthzGrpc}
 * (AuthorizationPolicy action CUSTOM); other meshConfig fields and provider kinds (tracing,
 * access logging) are Istio's and ignored here.
 *
 * <p>Each bad field is one problem naming the provider and the field; a provider with a problem
 * is left out, so a CUSTOM policy naming it fails closed (see {@link AuthorizationTranslator}).
 */
public record MeshConfig(Map<String, ExtAuthzProvider> providers, List<String> problems) {

    /** Istio's names. */
    public static final String CONFIG_MAP = "istio";
    public static final String KEY = "mesh";
    /** includeRequestBodyInCheck.maxRequestBytes above this is refused: the waypoint holds the body in memory. */
    public static final int MAX_REQUEST_BYTES = 1 << 20;

    static final MeshConfig EMPTY = new MeshConfig(Map.of(), List.of());

    private static final YAMLMapper YAML = new YAMLMapper();
    private static final Set<String> PROVIDER_KEYS = Set.of("name", "envoyExtAuthzHttp", "envoyExtAuthzGrpc",
            "zipkin", "lightstep", "datadog", "stackdriver", "opencensus", "skywalking", "opentelemetry",
            "prometheus", "envoyFileAccessLog", "envoyHttpAls", "envoyTcpAls", "envoyOtelAls", "sds");
    private static final Set<String> HTTP_KEYS = Set.of("service", "port", "timeout", "pathPrefix", "failOpen",
            "statusOnError", "includeRequestHeadersInCheck", "includeHeadersInCheck",
            "includeAdditionalHeadersInCheck", "includeRequestBodyInCheck", "headersToUpstreamOnAllow",
            "headersToDownstreamOnAllow", "headersToDownstreamOnDeny");
    private static final Set<String> GRPC_KEYS = Set.of("service", "port", "timeout", "failOpen", "statusOnError",
            "includeRequestBodyInCheck");
    private static final Set<String> BODY_KEYS = Set.of("maxRequestBytes", "allowPartialMessage", "packAsBytes");
    private static final Pattern DURATION = Pattern.compile("(\\d{1,9})(?:\\.(\\d{1,9}))?(s|ms)");
    /** Envoy's default ext_authz timeout. */
    private static final int DEFAULT_TIMEOUT_MS = 600_000;

    /** The ConfigMap {@code istio} of the root namespace among {@code configMaps}, read; empty when there is none. */
    static MeshConfig of(List<ConfigMap> configMaps, String rootNamespace) {
        for (ConfigMap cm : configMaps) {
            if (CONFIG_MAP.equals(cm.getMetadata().getName()) && rootNamespace.equals(cm.getMetadata().getNamespace())) {
                String mesh = cm.getData() == null ? null : cm.getData().get(KEY);
                return mesh == null ? EMPTY : parse(mesh);
            }
        }
        return EMPTY;
    }

    /** meshConfig as YAML. */
    public static MeshConfig parse(String yaml) {
        List<String> problems = new ArrayList<>();
        Map<String, ExtAuthzProvider> providers = new LinkedHashMap<>();
        Object root;
        try {
            root = YAML.readValue(yaml, Object.class);
        } catch (JsonProcessingException e) {
            return new MeshConfig(Map.of(), List.of(KEY + ": not valid YAML: " + e.getOriginalMessage()));
        }
        if (root == null) {
            return EMPTY;
        }
        try {
            Map<String, Object> mesh = Specs.map(root, KEY);
            List<Map<String, Object>> list = Specs.maps(mesh.get("extensionProviders"), "extensionProviders");
            for (int i = 0; i < list.size(); i++) {
                String at = "extensionProviders[" + i + "]";
                try {
                    provider(list.get(i), at, providers);
                } catch (Specs.Invalid e) {
                    problems.add(e.getMessage() + " (provider left out; CUSTOM policies naming it deny)");
                }
            }
        } catch (Specs.Invalid e) {
            problems.add(e.getMessage());
        }
        return new MeshConfig(Map.copyOf(providers), List.copyOf(problems));
    }

    private static void provider(Map<String, Object> p, String at, Map<String, ExtAuthzProvider> out) {
        Specs.onlyKeys(p, at, PROVIDER_KEYS);
        String name = Specs.string(p.get("name"), at + ".name");
        if (name == null || name.isEmpty()) {
            throw new Specs.Invalid(at + ".name: required");
        }
        at = at + " (" + name + ")";
        if (out.containsKey(name)) {
            throw new Specs.Invalid(at + ".name: defined more than once");
        }
        ExtAuthzProvider.Builder b = ExtAuthzProvider.newBuilder().setName(name);
        if (p.get("envoyExtAuthzHttp") != null) {
            String h = at + ".envoyExtAuthzHttp";
            Map<String, Object> m = Specs.map(p.get("envoyExtAuthzHttp"), h);
            Specs.onlyKeys(m, h, HTTP_KEYS);
            common(m, h, b);
            ExtAuthzHttp.Builder http = ExtAuthzHttp.newBuilder();
            String prefix = Specs.string(m.get("pathPrefix"), h + ".pathPrefix");
            if (prefix != null && !prefix.isEmpty()) {
                if (!prefix.startsWith("/") || prefix.chars().anyMatch(c -> c <= ' ' || c == '?' || c == '#' || c > 126)) {
                    throw new Specs.Invalid(h + ".pathPrefix: must start with '/' and hold no space, '?' or '#': '"
                            + prefix + "'");
                }
                http.setPathPrefix(prefix);
            }
            Object include = m.containsKey("includeRequestHeadersInCheck") ? m.get("includeRequestHeadersInCheck")
                    : m.get("includeHeadersInCheck");
            headers(include, h + ".includeRequestHeadersInCheck", http::addIncludeRequestHeadersInCheck);
            headers(m.get("headersToUpstreamOnAllow"), h + ".headersToUpstreamOnAllow",
                    http::addHeadersToUpstreamOnAllow);
            headers(m.get("headersToDownstreamOnAllow"), h + ".headersToDownstreamOnAllow",
                    http::addHeadersToDownstreamOnAllow);
            headers(m.get("headersToDownstreamOnDeny"), h + ".headersToDownstreamOnDeny",
                    http::addHeadersToDownstreamOnDeny);
            if (m.get("includeAdditionalHeadersInCheck") != null) {
                String a = h + ".includeAdditionalHeadersInCheck";
                for (Map.Entry<String, Object> e : Specs.map(m.get("includeAdditionalHeadersInCheck"), a).entrySet()) {
                    String value = Specs.string(e.getValue(), a + "." + e.getKey());
                    if (!validHeaderName(e.getKey()) || value == null || !validHeaderValue(value)) {
                        throw new Specs.Invalid(a + "." + e.getKey() + ": not a valid header name and value");
                    }
                    http.putIncludeAdditionalHeadersInCheck(e.getKey().toLowerCase(java.util.Locale.ROOT), value);
                }
            }
            Body body = body(m.get("includeRequestBodyInCheck"), h + ".includeRequestBodyInCheck");
            http.setMaxRequestBytes(body.maxBytes()).setAllowPartialMessage(body.allowPartial())
                    .setPackAsBytes(body.packAsBytes());
            b.setHttp(http);
        } else if (p.get("envoyExtAuthzGrpc") != null) {
            String g = at + ".envoyExtAuthzGrpc";
            Map<String, Object> m = Specs.map(p.get("envoyExtAuthzGrpc"), g);
            Specs.onlyKeys(m, g, GRPC_KEYS);
            common(m, g, b);
            Body body = body(m.get("includeRequestBodyInCheck"), g + ".includeRequestBodyInCheck");
            b.setGrpc(ExtAuthzGrpc.newBuilder().setMaxRequestBytes(body.maxBytes())
                    .setAllowPartialMessage(body.allowPartial()).setPackAsBytes(body.packAsBytes()));
        } else {
            return; // a tracing or logging provider: not ours to read
        }
        out.put(name, b.build());
    }

    private static void common(Map<String, Object> m, String at, ExtAuthzProvider.Builder b) {
        String service = Specs.string(m.get("service"), at + ".service");
        if (service == null || service.isEmpty()) {
            throw new Specs.Invalid(at + ".service: required");
        }
        if (!service.matches("([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[A-Za-z0-9.:\\[\\]-]+")) {
            throw new Specs.Invalid(at + ".service: not a hostname: '" + service + "'");
        }
        b.setService(service);
        if (m.get("port") == null) {
            throw new Specs.Invalid(at + ".port: required");
        }
        b.setPort(Specs.port(m.get("port"), at + ".port"));
        b.setTimeoutMs(m.get("timeout") == null ? DEFAULT_TIMEOUT_MS : timeout(m.get("timeout"), at + ".timeout"));
        Object failOpen = m.get("failOpen");
        if (failOpen != null && !(failOpen instanceof Boolean)) {
            throw new Specs.Invalid(at + ".failOpen: expected true or false, got '" + failOpen + "'");
        }
        b.setFailOpen(Boolean.TRUE.equals(failOpen));
        String status = m.get("statusOnError") == null ? null : String.valueOf(m.get("statusOnError"));
        if (status != null) {
            if (!status.matches("[1-5][0-9][0-9]") || Integer.parseInt(status) < 200) {
                throw new Specs.Invalid(at + ".statusOnError: not an HTTP status 200-599: '" + status + "'");
            }
            b.setStatusOnError(Integer.parseInt(status));
        }
    }

    /** A protobuf Duration as YAML writes it ("0.5s", "10s"), or "500ms"; 1 ms .. 1 h. */
    static int timeout(Object raw, String at) {
        String s = raw instanceof String str ? str.trim() : null;
        Matcher m = s == null ? null : DURATION.matcher(s);
        if (m == null || !m.matches() || (m.group(3).equals("ms") && m.group(2) != null)) {
            throw new Specs.Invalid(at + ": not a duration (like 0.5s, 10s, 250ms): '" + raw + "'");
        }
        long ms;
        if (m.group(3).equals("ms")) {
            ms = Long.parseLong(m.group(1));
        } else {
            String frac = m.group(2) == null ? "" : m.group(2);
            ms = Long.parseLong(m.group(1)) * 1000 + (frac.isEmpty() ? 0
                    : Long.parseLong((frac + "00").substring(0, 3)));
        }
        if (ms < 1 || ms > 3_600_000) {
            throw new Specs.Invalid(at + ": must be between 1ms and 1h: '" + raw + "'");
        }
        return (int) ms;
    }

    private static void headers(Object raw, String at, Consumer<StringMatch> sink) {
        if (raw == null) {
            return;
        }
        List<String> names = Specs.strings(raw, at);
        for (int i = 0; i < names.size(); i++) {
            String n = names.get(i).toLowerCase(java.util.Locale.ROOT);
            String core = n.equals("*") ? "" : n.startsWith("*") ? n.substring(1) : n.endsWith("*")
                    ? n.substring(0, n.length() - 1) : n;
            if (!n.equals("*") && !validHeaderName(core)) {
                throw new Specs.Invalid(at + "[" + i + "]: not a header name (exact, 'prefix*', '*suffix' or '*'): '"
                        + names.get(i) + "'");
            }
            sink.accept(Specs.istioString(n, at + "[" + i + "]", false));
        }
    }

    /** includeRequestBodyInCheck, either kind of provider; maxBytes 0 = no body. */
    private record Body(int maxBytes, boolean allowPartial, boolean packAsBytes) {
        static final Body NONE = new Body(0, false, false);
    }

    private static Body body(Object raw, String at) {
        if (raw == null) {
            return Body.NONE;
        }
        Map<String, Object> m = Specs.map(raw, at);
        Specs.onlyKeys(m, at, BODY_KEYS);
        Integer max = Specs.integer(m.get("maxRequestBytes"), at + ".maxRequestBytes");
        if (max == null || max < 1 || max > MAX_REQUEST_BYTES) {
            throw new Specs.Invalid(at + ".maxRequestBytes: required, 1.." + MAX_REQUEST_BYTES + ": '"
                    + m.get("maxRequestBytes") + "'");
        }
        return new Body(max, bool(m.get("allowPartialMessage"), at + ".allowPartialMessage"),
                bool(m.get("packAsBytes"), at + ".packAsBytes"));
    }

    private static boolean bool(Object o, String at) {
        if (o == null) {
            return false;
        }
        if (o instanceof Boolean b) {
            return b;
        }
        throw new Specs.Invalid(at + ": expected true or false, got '" + o + "'");
    }

    private static boolean validHeaderName(String n) {
        return !n.isEmpty() && n.matches("[!#$%&'*+.^_`|~0-9A-Za-z-]+");
    }

    private static boolean validHeaderValue(String v) {
        return v.chars().allMatch(c -> c == '\t' || (c >= ' ' && c != 127));
    }
}
