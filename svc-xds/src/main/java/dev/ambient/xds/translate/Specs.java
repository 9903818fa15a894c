package dev.ambient.xds.translate;

import com.google.protobuf.ByteString;
import dev.ambient.proto.workload.Cidr;
import dev.ambient.proto.workload.StringMatch;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/** Reading the spec of generic resources as maps, strictly; shared value conversions. */
final class Specs {

    private Specs() {
    }

    /** A resource (or part) that cannot be translated; the message says where and why. */
    static final class Invalid extends RuntimeException {
        Invalid(String message) {
            super(message, null, false, false);
        }
    }

    private static final Pattern LABEL_NAME = Pattern.compile("([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?");
    private static final Pattern DNS_SUBDOMAIN = Pattern.compile("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");

    static String id(HasMetadata o) {
        String ns = o.getMetadata() == null ? null : o.getMetadata().getNamespace();
        String name = o.getMetadata() == null ? null : o.getMetadata().getName();
        return o.getKind() + "/" + (ns == null || ns.isEmpty() ? "" : ns + "/") + name;
    }

    static String namespace(HasMetadata o) {
        String ns = o.getMetadata().getNamespace();
        return ns == null || ns.isEmpty() ? "default" : ns;
    }

    static Map<String, String> labels(HasMetadata o) {
        Map<String, String> l = o.getMetadata() == null ? null : o.getMetadata().getLabels();
        return l == null ? Map.of() : l;
    }

    static Map<String, Object> spec(GenericKubernetesResource r) {
        return map(r.getAdditionalProperties().get("spec"), "spec");
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> map(Object o, String path) {
        if (o == null) {
            return Map.of();
        }
        if (o instanceof Map<?, ?> m) {
            Map<String, Object> out = new LinkedHashMap<>();
            m.forEach((k, v) -> out.put(String.valueOf(k), v));
            return out;
        }
        throw new Invalid(path + ": expected an object");
    }

    static List<Object> list(Object o, String path) {
        if (o == null) {
            return List.of();
        }
        if (o instanceof List<?> l) {
            return new ArrayList<>(l);
        }
        throw new Invalid(path + ": expected a list");
    }

    static List<Map<String, Object>> maps(Object o, String path) {
        List<Object> l = list(o, path);
        List<Map<String, Object>> out = new ArrayList<>(l.size());
        for (int i = 0; i < l.size(); i++) {
            out.add(map(l.get(i), path + "[" + i + "]"));
        }
        return out;
    }

    /** Refuses keys outside {@code allowed}. */
    static void onlyKeys(Map<String, Object> m, String path, Set<String> allowed) {
        for (String k : m.keySet()) {
            if (!allowed.contains(k)) {
                throw new Invalid((path.isEmpty() ? "" : path + ".") + k + ": unknown field");
            }
        }
    }

    static String string(Object o, String path) {
        if (o == null) {
            return null;
        }
        if (o instanceof String s) {
            return s;
        }
        throw new Invalid(path + ": expected a string, got " + o);
    }

    static List<String> strings(Object o, String path) {
        List<Object> l = list(o, path);
        List<String> out = new ArrayList<>(l.size());
        for (int i = 0; i < l.size(); i++) {
            String s = string(l.get(i), path + "[" + i + "]");
            if (s == null) {
                throw new Invalid(path + "[" + i + "]: must not be null");
            }
            out.add(s);
        }
        return out;
    }

    static Integer integer(Object o, String path) {
        if (o == null) {
            return null;
        }
        if (o instanceof Integer || o instanceof Long || o instanceof Short) {
            return ((Number) o).intValue();
        }
        if (o instanceof String s && s.matches("\\d{1,9}")) {
            return Integer.parseInt(s);
        }
        throw new Invalid(path + ": expected a whole number, got '" + o + "'");
    }

    /** A port 1..65535, written as a number or a numeric string (Istio writes ports as strings). */
    static int port(Object o, String path) {
        Integer p;
        try {
            p = integer(o, path);
        } catch (Invalid e) {
            p = null;
        }
        if (p == null || p < 1 || p > 65535) {
            throw new Invalid(path + ": not a port number: '" + o + "'");
        }
        return p;
    }

    /** Istio string forms: exact, "prefix*", "*suffix", "*" (present). */
    static StringMatch istioString(String s, String path, boolean principal) {
        if (principal && s.startsWith("spiffe://")) {
            s = s.substring("spiffe://".length());
        }
        if (s.isEmpty()) {
            throw new Invalid(path + ": must not be empty");
        }
        if (s.equals("*")) {
            return StringMatch.newBuilder().setPresence(true).build();
        }
        StringMatch.Builder b = StringMatch.newBuilder();
        String core;
        if (s.startsWith("*")) {
            core = s.substring(1);
            b.setSuffix(core);
        } else if (s.endsWith("*")) {
            core = s.substring(0, s.length() - 1);
            b.setPrefix(core);
        } else {
            core = s;
            b.setExact(core);
        }
        if (core.indexOf('*') >= 0) {
            throw new Invalid(path + ": '*' is only allowed at the start or the end: '" + s + "'");
        }
        return b.build();
    }

    /** An IP literal, never a DNS lookup. */
    static InetAddress ip(String s, String path) {
        try {
            InetAddress a = InetAddress.ofLiteral(s.trim());
            byte[] b = a.getAddress();
            return InetAddress.getByAddress(b);
        } catch (Exception e) {
            throw new Invalid(path + ": not an IP address: '" + s + "'");
        }
    }

    static ByteString ipBytes(String s, String path) {
        return ByteString.copyFrom(ip(s, path).getAddress());
    }

    /** "10.0.0.0/8" or a single address. */
    static Cidr cidr(String s, String path) {
        int slash = s.indexOf('/');
        InetAddress ip = ip(slash < 0 ? s : s.substring(0, slash), path);
        int bits = ip.getAddress().length * 8;
        int length = bits;
        if (slash >= 0) {
            String len = s.substring(slash + 1);
            if (!len.matches("\\d{1,3}") || Integer.parseInt(len) > bits) {
                throw new Invalid(path + ": prefix length must be 0.." + bits + ": '" + s + "'");
            }
            length = Integer.parseInt(len);
        }
        return Cidr.newBuilder().setAddress(ByteString.copyFrom(ip.getAddress())).setLength(length).build();
    }

    /** matchLabels as Kubernetes validates them: string keys and values of label syntax. */
    static Map<String, String> matchLabels(Object o, String path) {
        Map<String, Object> m = map(o, path);
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : m.entrySet()) {
            String key = e.getKey();
            if (!validLabelKey(key)) {
                throw new Invalid(path + ": invalid label key '" + key + "'");
            }
            if (!(e.getValue() instanceof String v)) {
                throw new Invalid(path + "." + key + ": label values are strings, got " + e.getValue());
            }
            if (v.length() > 63 || !LABEL_NAME.matcher(v).matches()) {
                throw new Invalid(path + "." + key + ": invalid label value '" + v + "'");
            }
            out.put(key, v);
        }
        return out;
    }

    static boolean validLabelKey(String key) {
        int slash = key.indexOf('/');
        String name = slash < 0 ? key : key.substring(slash + 1);
        if (slash >= 0) {
            String prefix = key.substring(0, slash);
            if (prefix.isEmpty() || prefix.length() > 253 || !DNS_SUBDOMAIN.matcher(prefix).matches()) {
                return false;
            }
        }
        return !name.isEmpty() && name.length() <= 63 && LABEL_NAME.matcher(name).matches();
    }

    static boolean selects(Map<String, String> selector, Map<String, String> labels) {
        for (Map.Entry<String, String> e : selector.entrySet()) {
            if (!e.getValue().equals(labels.get(e.getKey()))) {
                return false;
            }
        }
        return true;
    }

    /**
     * A Gateway API duration ({@code 1h}, {@code 10s}, {@code 500ms}, {@code 1m30s}) in
     * milliseconds.
     */
    static long durationMillis(String s, String path) {
        if (s == null || !s.matches("([0-9]{1,5}(h|m|s|ms)){1,4}")) {
            throw new Invalid(path + ": not a duration (like 10s, 500ms, 1m30s): '" + s + "'");
        }
        var m = Pattern.compile("([0-9]{1,5})(ms|h|m|s)").matcher(s);
        long total = 0;
        while (m.find()) {
            long n = Long.parseLong(m.group(1));
            total += switch (m.group(2)) {
                case "h" -> n * 3_600_000L;
                case "m" -> n * 60_000L;
                case "s" -> n * 1000L;
                default -> n;
            };
        }
        return total;
    }
}
