package dev.ambient.xds.translate;

import com.google.protobuf.Message;
import dev.ambient.proto.workload.OriginatedTls;
import dev.ambient.proto.workload.OutlierDetection;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.Service;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code networking.istio.io} DestinationRule, the parts a waypoint uses: outlier detection
 * ({@code trafficPolicy.outlierDetection}, put on the {@code Service}), and TLS originated to a
 * service's endpoints ({@code trafficPolicy.tls} and {@code portLevelSettings[].tls} with
 * {@code mode: SIMPLE} or {@code MUTUAL}, {@code sni}, {@code caCertificates},
 * {@code insecureSkipVerify}, {@code subjectAltNames}, {@code clientCertificate} and
 * {@code privateKey}). Each service port gets its effective setting (a port's own over the rule's),
 * put on the {@code Service} as {@code originated_tls}; the SNI defaults to the service's hostname,
 * and the certificate is always verified against it (or the rule's subjectAltNames) unless the rule
 * says {@code insecureSkipVerify: true}. Fields the waypoint does not apply are reported and
 * ignored. Fail closed: a rule that asks for TLS somewhere but is invalid (a bad field, an unknown
 * mode, MUTUAL without a certificate) is not skipped, which would send its host's traffic in clear;
 * its host gets a refusal instead, which the waypoint answers 503 with the reason.
 */
final class DestinationRuleTranslator {

    private static final Set<String> SPEC_KEYS = Set.of("host", "trafficPolicy", "subsets", "exportTo",
            "workloadSelector");
    private static final Set<String> POLICY_KEYS = Set.of("tls", "portLevelSettings", "connectionPool",
            "loadBalancer", "outlierDetection", "tunnel", "proxyProtocol");
    private static final Set<String> TLS_KEYS = Set.of("mode", "sni", "caCertificates", "insecureSkipVerify",
            "subjectAltNames", "credentialName", "clientCertificate", "privateKey", "caCrl");
    private static final Set<String> OUTLIER_KEYS = Set.of("consecutive5xxErrors", "consecutiveGatewayErrors",
            "interval", "baseEjectionTime", "maxEjectionPercent", "minHealthPercent", "consecutiveErrors",
            "consecutiveLocalOriginFailures", "splitExternalLocalOriginErrors");
    private static final Set<String> MODES = Set.of("DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL");

    /** A port's TLS as read; {@code null} mode = not set here (the rule's own applies). */
    private record TlsSpec(String mode, String sni, String caCertificates, boolean insecureSkipVerify,
            String clientCertificate, String privateKey, List<String> subjectAltNames) {
    }

    /** Modes that originate nothing: no TLS of ours, or what HBONE already is. */
    private static final Set<String> NO_ORIGINATION = Set.of("DISABLE", "ISTIO_MUTUAL");

    private final Context ctx;

    DestinationRuleTranslator(Context ctx) {
        this.ctx = ctx;
    }

    /** Replaces, in {@code out}, the services a rule applies to with their TLS settings added. */
    void apply(List<GenericKubernetesResource> rules, List<Message> out) {
        for (GenericKubernetesResource r : rules) {
            if (r.getMetadata() == null || r.getMetadata().getName() == null) {
                ctx.problem("DestinationRule/?", "metadata.name is missing");
                continue;
            }
            try {
                apply(r, out);
            } catch (Specs.Invalid e) {
                refuseIfTlsAsked(r, e.getMessage(), out);
            } catch (RuntimeException e) {
                refuseIfTlsAsked(r, "cannot be translated: " + e, out);
            }
        }
    }

    /**
     * An invalid rule: skipped when it asks for no TLS anywhere, else its host's ports all get a
     * refusal (never plain text where the rule wanted TLS).
     */
    private void refuseIfTlsAsked(GenericKubernetesResource r, String why, List<Message> out) {
        Map<String, Object> spec = r.getAdditionalProperties().get("spec") instanceof Map<?, ?> m
                ? Specs.map(m, "spec") : Map.of();
        String host = spec.get("host") instanceof String h && !h.isBlank() ? h.trim().toLowerCase(Locale.ROOT) : null;
        if (host == null || !asksForTls(spec.get("trafficPolicy"))) {
            ctx.problem(r, why + "; rule skipped");
            return;
        }
        String source = Specs.namespace(r) + "/" + r.getMetadata().getName();
        List<Integer> matched = matching(Specs.namespace(r), host, out);
        ctx.problem(r, why + "; " + (matched.isEmpty() ? "rule skipped (" + host + " is no Service or ServiceEntry"
                + " host)" : "connections to " + host + " are refused until it is fixed (it asks for TLS)"));
        OriginatedTls refusal = OriginatedTls.newBuilder().setPort(0).setSource(source)
                .setRefusal("DestinationRule " + source + " asks for TLS but is invalid: " + why).build();
        for (int index : matched) {
            replace(out, index, ((Service) out.get(index)).toBuilder().clearOriginatedTls().addOriginatedTls(refusal)
                    .build());
        }
    }

    /** Whether any TLS setting of the policy (or of a port of it) may ask for TLS; unreadable ones may. */
    private static boolean asksForTls(Object trafficPolicy) {
        if (trafficPolicy == null) {
            return false;
        }
        if (!(trafficPolicy instanceof Map<?, ?> policy)) {
            return true;
        }
        List<Object> tlsBlocks = new ArrayList<>();
        tlsBlocks.add(policy.get("tls"));
        Object ports = policy.get("portLevelSettings");
        if (ports instanceof List<?> list) {
            for (Object p : list) {
                if (!(p instanceof Map<?, ?> port)) {
                    return true;
                }
                tlsBlocks.add(port.get("tls"));
            }
        } else if (ports != null) {
            return true;
        }
        for (Object tls : tlsBlocks) {
            if (tls != null && !(tls instanceof Map<?, ?> t && (t.get("mode") == null
                    || NO_ORIGINATION.contains(String.valueOf(t.get("mode")))))) {
                return true;
            }
        }
        return false;
    }

    private void apply(GenericKubernetesResource r, List<Message> out) {
        Map<String, Object> spec = Specs.spec(r);
        Specs.onlyKeys(spec, "spec", SPEC_KEYS);
        String ns = Specs.namespace(r);
        String source = ns + "/" + r.getMetadata().getName();
        String host = Specs.string(spec.get("host"), "spec.host");
        if (host == null || host.isBlank()) {
            throw new Specs.Invalid("spec.host: required");
        }
        host = host.trim().toLowerCase(Locale.ROOT);
        for (String ignored : List.of("subsets", "exportTo", "workloadSelector")) {
            if (spec.get(ignored) != null) {
                ctx.problem(r, "spec." + ignored + ": not supported; ignored");
            }
        }
        Map<String, Object> policy = spec.get("trafficPolicy") == null ? Map.of()
                : Specs.map(spec.get("trafficPolicy"), "spec.trafficPolicy");
        Specs.onlyKeys(policy, "spec.trafficPolicy", POLICY_KEYS);
        OutlierDetection outliers = outlierDetection(r, policy.get("outlierDetection"), source);
        for (String ignored : List.of("connectionPool", "loadBalancer", "tunnel", "proxyProtocol")) {
            if (policy.get(ignored) != null) {
                ctx.problem(r, "spec.trafficPolicy." + ignored + ": not supported; ignored");
            }
        }
        TlsSpec all = tls(r, policy.get("tls"), "spec.trafficPolicy.tls");
        Map<Integer, TlsSpec> perPort = new HashMap<>();
        List<Map<String, Object>> ports = Specs.maps(policy.get("portLevelSettings"),
                "spec.trafficPolicy.portLevelSettings");
        for (int i = 0; i < ports.size(); i++) {
            String at = "spec.trafficPolicy.portLevelSettings[" + i + "]";
            Map<String, Object> setting = ports.get(i);
            Set<String> keys = new java.util.HashSet<>(POLICY_KEYS);
            keys.add("port");
            keys.remove("portLevelSettings");
            Specs.onlyKeys(setting, at, keys);
            if (setting.get("port") == null) {
                throw new Specs.Invalid(at + ".port: required");
            }
            Map<String, Object> port = Specs.map(setting.get("port"), at + ".port");
            Specs.onlyKeys(port, at + ".port", Set.of("number"));
            int number = Specs.port(port.get("number"), at + ".port.number");
            if (setting.get("outlierDetection") != null) {
                ctx.problem(r, at + ".outlierDetection: not supported per port (the rule's applies); ignored");
            }
            TlsSpec t = tls(r, setting.get("tls"), at + ".tls");
            if (t != null) {
                perPort.put(number, t);
            }
        }
        List<Integer> matched = matching(ns, host, out);
        if (matched.isEmpty()) {
            ctx.problem(r, "spec.host: " + host + " is no Service or ServiceEntry host; nothing applies");
            return;
        }
        for (int index : matched) {
            Service s = (Service) out.get(index);
            Service.Builder b = s.toBuilder().clearOriginatedTls().clearOutlierDetection();
            if (outliers != null) {
                b.setOutlierDetection(outliers);
            }
            for (Port p : s.getPortsList()) {
                TlsSpec t = perPort.getOrDefault(p.getServicePort(), all);
                if (t == null || NO_ORIGINATION.contains(t.mode())) {
                    continue; // DISABLE, ISTIO_MUTUAL (what HBONE already is), or nothing
                }
                b.addOriginatedTls(OriginatedTls.newBuilder().setPort(p.getServicePort())
                        .setSni(t.sni() != null ? t.sni() : s.getHostname())
                        .setCaCertificates(t.caCertificates() == null ? "" : t.caCertificates())
                        .setInsecureSkipVerify(t.insecureSkipVerify()).setSource(source)
                        .setClientCertificate(t.clientCertificate() == null ? "" : t.clientCertificate())
                        .setPrivateKey(t.privateKey() == null ? "" : t.privateKey())
                        .addAllSubjectAltNames(t.subjectAltNames()));
            }
            for (int port : perPort.keySet()) {
                if (s.getPortsList().stream().noneMatch(p -> p.getServicePort() == port)) {
                    ctx.problem(r, "spec.trafficPolicy.portLevelSettings: " + s.getHostname() + " has no port " + port);
                }
            }
            replace(out, index, b.build());
        }
    }

    /** Puts {@code changed} where the service at {@code index} was, in {@code out} and the context's indexes. */
    private void replace(List<Message> out, int index, Service changed) {
        Message s = out.get(index);
        out.set(index, changed);
        ctx.translatedEntries.replaceAll(e -> e == s ? changed : e);
        ctx.translatedServices.replaceAll((k, e) -> e == s ? changed : e);
    }

    /** Indexes in {@code out} of the services named by {@code host}: those of the rule's namespace first. */
    private static List<Integer> matching(String ns, String host, List<Message> out) {
        List<Integer> own = new ArrayList<>();
        List<Integer> others = new ArrayList<>();
        for (int i = 0; i < out.size(); i++) {
            if (out.get(i) instanceof Service s) {
                String h = s.getHostname();
                boolean named = h.equals(host) || h.equals(host + "." + s.getNamespace() + ".svc.cluster.local")
                        || h.equals(host + ".svc.cluster.local");
                if (named) {
                    (s.getNamespace().equals(ns) ? own : others).add(i);
                }
            }
        }
        return own.isEmpty() ? others : own;
    }

    /**
     * {@code trafficPolicy.outlierDetection} with Istio's defaults for what it leaves out (Envoy's
     * as Istio passes them: 5 consecutive 5xx, gateway errors off, interval 10s, base ejection 30s,
     * at most 10 % ejected); null when the rule has none (then nothing is ever ejected, as Istio).
     */
    private OutlierDetection outlierDetection(GenericKubernetesResource r, Object o, String source) {
        if (o == null) {
            return null;
        }
        String at = "spec.trafficPolicy.outlierDetection";
        Map<String, Object> od = Specs.map(o, at);
        Specs.onlyKeys(od, at, OUTLIER_KEYS);
        for (String ignored : List.of("consecutiveErrors", "consecutiveLocalOriginFailures",
                "splitExternalLocalOriginErrors", "minHealthPercent")) {
            if (od.get(ignored) != null) {
                ctx.problem(r, at + "." + ignored + ": not supported; ignored");
            }
        }
        OutlierDetection.Builder b = OutlierDetection.newBuilder().setSource(source)
                .setConsecutive5XxErrors(count(od, "consecutive5xxErrors", 5, at))
                .setConsecutiveGatewayErrors(count(od, "consecutiveGatewayErrors", 0, at))
                .setIntervalMs(millis(od, "interval", 10_000, at))
                .setBaseEjectionMs(millis(od, "baseEjectionTime", 30_000, at));
        Integer max = Specs.integer(od.getOrDefault("maxEjectionPercent", 10), at + ".maxEjectionPercent");
        if (max < 0 || max > 100) {
            throw new Specs.Invalid(at + ".maxEjectionPercent: must be 0..100, got " + max);
        }
        return b.setMaxEjectionPercent(max).build();
    }

    private static int count(Map<String, Object> od, String key, int dflt, String at) {
        Integer n = Specs.integer(od.getOrDefault(key, dflt), at + "." + key);
        if (n < 0) {
            throw new Specs.Invalid(at + "." + key + ": must not be negative, got " + n);
        }
        return n;
    }

    private static int millis(Map<String, Object> od, String key, int dflt, String at) {
        if (od.get(key) == null) {
            return dflt;
        }
        long ms = Specs.durationMillis(Specs.string(od.get(key), at + "." + key), at + "." + key);
        if (ms < 1) {
            throw new Specs.Invalid(at + "." + key + ": must be at least 1ms");
        }
        return (int) Math.min(ms, Integer.MAX_VALUE);
    }

    private TlsSpec tls(GenericKubernetesResource r, Object o, String at) {
        if (o == null) {
            return null;
        }
        Map<String, Object> tls = Specs.map(o, at);
        Specs.onlyKeys(tls, at, TLS_KEYS);
        String mode = Specs.string(tls.getOrDefault("mode", "DISABLE"), at + ".mode");
        if (!MODES.contains(mode)) {
            throw new Specs.Invalid(at + ".mode: must be one of " + new java.util.TreeSet<>(MODES) + ", got '" + mode + "'");
        }
        if (tls.get("caCrl") != null) {
            ctx.problem(r, at + ".caCrl: not supported; ignored");
        }
        String clientCertificate = absolutePath(tls, "clientCertificate", at);
        String privateKey = absolutePath(tls, "privateKey", at);
        if (mode.equals("MUTUAL") && (clientCertificate == null || privateKey == null)) {
            throw new Specs.Invalid(tls.get("credentialName") != null && clientCertificate == null && privateKey == null
                    ? at + ".credentialName: not supported (the waypoint reads no Kubernetes Secret); give"
                            + " clientCertificate and privateKey, files mounted in the waypoint"
                    : at + ": MUTUAL needs clientCertificate and privateKey");
        }
        if (tls.get("credentialName") != null) {
            ctx.problem(r, at + ".credentialName: not supported (the waypoint reads no Kubernetes Secret); "
                    + (mode.equals("MUTUAL") ? "clientCertificate and privateKey are used" : "ignored"));
        }
        if (!mode.equals("MUTUAL") && (clientCertificate != null || privateKey != null)) {
            ctx.problem(r, at + ".clientCertificate, privateKey: used with mode MUTUAL only; ignored");
            clientCertificate = null;
            privateKey = null;
        }
        List<String> sans = Specs.strings(tls.get("subjectAltNames"), at + ".subjectAltNames");
        for (int i = 0; i < sans.size(); i++) {
            if (sans.get(i).isBlank()) {
                throw new Specs.Invalid(at + ".subjectAltNames[" + i + "]: must not be empty");
            }
        }
        String sni = Specs.string(tls.get("sni"), at + ".sni");
        if (sni != null && !sni.matches("[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?")) {
            throw new Specs.Invalid(at + ".sni: not a host name: '" + sni + "'");
        }
        String ca = absolutePath(tls, "caCertificates", at);
        Object insecure = tls.get("insecureSkipVerify");
        if (insecure != null && !(insecure instanceof Boolean)) {
            throw new Specs.Invalid(at + ".insecureSkipVerify: must be true or false");
        }
        return new TlsSpec(mode, sni == null ? null : sni.toLowerCase(Locale.ROOT), ca, Boolean.TRUE.equals(insecure),
                clientCertificate, privateKey, sans);
    }

    /** A file named by the rule: a path on the waypoint's own file system, so absolute. */
    private static String absolutePath(Map<String, Object> tls, String key, String at) {
        String path = Specs.string(tls.get(key), at + "." + key);
        if (path != null && !path.startsWith("/")) {
            throw new Specs.Invalid(at + "." + key + ": must be an absolute path on the waypoint, got '" + path + "'");
        }
        return path;
    }
}
