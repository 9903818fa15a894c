package dev.ambient.xds.translate;

import com.google.protobuf.Message;
import dev.ambient.auth.RequestAuthKey;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.L7Condition;
import dev.ambient.proto.l7.L7Operation;
import dev.ambient.proto.l7.L7Rule;
import dev.ambient.proto.l7.L7Source;
import dev.ambient.proto.workload.Action;
import dev.ambient.proto.workload.Authorization;
import dev.ambient.proto.workload.Cidr;
import dev.ambient.proto.workload.Clause;
import dev.ambient.proto.workload.Match;
import dev.ambient.proto.workload.PeerAuthentication;
import dev.ambient.proto.workload.Rule;
import dev.ambient.proto.workload.Scope;
import dev.ambient.proto.workload.StringMatch;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * {@code security.istio.io} AuthorizationPolicy and PeerAuthentication, with Istio's meaning.
 *
 * <p>A policy with {@code selector} (or none) applies to workloads and is enforced by ztunnels: it
 * becomes an {@link Authorization}, scope WORKLOAD_SELECTOR (the uids of the matching pods in the
 * policy's namespace; in the root namespace, in every namespace), NAMESPACE, or GLOBAL for a
 * policy without selector in the root namespace. A policy with {@code targetRefs} (Gateway or
 * Service) is for waypoints and becomes an {@link L7Authorization}.
 *
 * <p>An Istio rule {@code {from, to, when}} becomes one {@link Rule} whose clauses are
 * [from-clause, to-clause, one clause per condition]; every {@code from[]} / {@code to[]} entry is
 * one {@link Match} of its clause (any of them may hold). An empty rule matches everything; a
 * policy without rules matches nothing (ALLOW without rules allows nothing, DENY denies nothing).
 *
 * <p>Parts a ztunnel cannot enforce (L7 fields in a workload policy, JWT fields, unknown
 * conditions) and bad values (a non-numeric port, a malformed CIDR) are reported and the
 * translation fails closed, as Istio's ztunnel does: an ALLOW rule with such a part is dropped
 * (it never matches), while in a DENY rule the offending field is ignored (the rule denies more).
 * The same holds for L7 rules and the waypoint: it evaluates the {@code when} keys
 * {@code request.headers[<name>]}, {@code source.principal}, {@code source.namespace},
 * {@code source.ip}, {@code remote.ip}, {@code destination.ip} (as addresses and CIDR blocks),
 * {@code destination.port} and, from a verified JWT, {@code request.auth.principal},
 * {@code request.auth.audiences}, {@code request.auth.presenter} and
 * {@code request.auth.claims[<name>]...} ({@link dev.ambient.auth.RequestAuthKey}), with {@code requestPrincipals};
 * any other key ({@code connection.sni}, ...) is such a part.
 * A policy whose structure is wrong (unknown field, unknown action, invalid selector, no existing
 * target) is reported and skipped entirely.
 */
final class AuthorizationTranslator {

    private static final Set<String> SPEC_KEYS = Set.of("selector", "targetRef", "targetRefs", "action", "rules",
            "provider");
    private static final Set<String> SELECTOR_KEYS = Set.of("matchLabels");
    private static final Set<String> RULE_KEYS = Set.of("from", "to", "when");
    private static final Set<String> FROM_KEYS = Set.of("source");
    private static final Set<String> SOURCE_KEYS = Set.of("principals", "notPrincipals", "requestPrincipals",
            "notRequestPrincipals", "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks", "remoteIpBlocks",
            "notRemoteIpBlocks", "serviceAccounts", "notServiceAccounts");
    private static final Set<String> TO_KEYS = Set.of("operation");
    private static final Set<String> OPERATION_KEYS = Set.of("hosts", "notHosts", "ports", "notPorts", "methods",
            "notMethods", "paths", "notPaths");
    private static final Set<String> WHEN_KEYS = Set.of("key", "values", "notValues");
    private static final Set<String> PEER_AUTH_KEYS = Set.of("selector", "mtls", "portLevelMtls");
    private static final String NEEDS_WAYPOINT = "L7 fields need a waypoint (targetRefs)";
    /** HTTP header names (RFC 9110 tokens), for {@code request.headers[<name>]}. */
    private static final Pattern HEADER_NAME = Pattern.compile("[!#$%&'*+.^_`|~0-9A-Za-z-]+");

    private final Context ctx;
    private final CustomProviders custom;

    AuthorizationTranslator(Context ctx) {
        this.ctx = ctx;
        this.custom = new CustomProviders(ctx);
    }

    // ------------------------------------------------------------------ AuthorizationPolicy

    Message translate(GenericKubernetesResource p) {
        Map<String, Object> spec = Specs.spec(p);
        Specs.onlyKeys(spec, "spec", SPEC_KEYS);
        Action action = action(spec.get("action"));
        boolean targeted = PolicyTargets.targeted(spec);
        if (targeted && spec.containsKey("selector")) {
            throw new Specs.Invalid("spec: selector and targetRefs cannot be used together");
        }
        List<Map<String, Object>> rules = Specs.maps(spec.get("rules"), "spec.rules");
        if (action != Action.CUSTOM && spec.get("provider") != null) {
            throw new Specs.Invalid("spec.provider: only with action CUSTOM");
        }
        if (action == Action.CUSTOM && !targeted) {
            // No ztunnel calls an authorizer: its requests are refused (fail closed), as Istio's ztunnel does.
            ctx.problem(p, "action CUSTOM needs a waypoint (targetRefs); a ztunnel denies what the rules match");
            custom.providerName(spec);
            return l4(p, spec, Action.DENY, rules);
        }
        if (action == Action.CUSTOM) {
            var provider = custom.resolve(p, spec);
            if (provider.isEmpty()) {
                return l7(p, spec, Action.DENY, rules); // an unknown or broken provider: what it would judge is denied
            }
            return l7(p, spec, action, rules).toBuilder().setProvider(provider.get()).build();
        }
        return targeted ? l7(p, spec, action, rules) : l4(p, spec, action, rules);
    }

    private static Action action(Object raw) {
        String a = Specs.string(raw, "spec.action");
        if (a == null || a.isEmpty() || a.equals("ALLOW")) {
            return Action.ALLOW;
        }
        return switch (a) {
            case "DENY" -> Action.DENY;
            case "CUSTOM" -> Action.CUSTOM;
            case "AUDIT" -> throw new Specs.Invalid("spec.action: " + a + " is not supported; policy skipped");
            default -> throw new Specs.Invalid("spec.action: unknown action '" + a + "' (ALLOW, DENY or CUSTOM)");
        };
    }

    private static boolean dryRun(GenericKubernetesResource p) {
        Map<String, String> a = p.getMetadata().getAnnotations();
        return a != null && "true".equalsIgnoreCase(a.get("istio.io/dry-run"));
    }

    private Authorization l4(GenericKubernetesResource p, Map<String, Object> spec, Action action,
            List<Map<String, Object>> rules) {
        String ns = Specs.namespace(p);
        Authorization.Builder b = Authorization.newBuilder().setName(p.getMetadata().getName()).setNamespace(ns)
                .setAction(action).setDryRun(dryRun(p));
        scope(spec.get("selector"), ns, b::setScope, b::addSelectedWorkloads);
        List<Rule> translated = new ArrayList<>();
        for (int i = 0; i < rules.size(); i++) {
            String path = "spec.rules[" + i + "]";
            List<String> issues = new ArrayList<>();
            Rule r = l4Rule(rules.get(i), path, issues);
            if (!issues.isEmpty()) {
                if (action == Action.ALLOW) {
                    ctx.problem(p, path + " never matches (ALLOW fails closed): " + String.join("; ", issues));
                    continue;
                }
                ctx.problem(p, path + ": ignored, so the rule denies more broadly: " + String.join("; ", issues));
            }
            translated.add(r);
        }
        b.addAllRules(translated);
        return b.build();
    }

    /** Sets the scope from a selector and lists the selected workloads. */
    private void scope(Object selectorRaw, String ns, Consumer<Scope> scope, Consumer<String> selected) {
        Map<String, String> labels = Map.of();
        if (selectorRaw != null) {
            Map<String, Object> sel = Specs.map(selectorRaw, "spec.selector");
            Specs.onlyKeys(sel, "spec.selector", SELECTOR_KEYS);
            labels = Specs.matchLabels(sel.get("matchLabels"), "spec.selector.matchLabels");
        }
        if (labels.isEmpty()) {
            scope.accept(ns.equals(ctx.config.rootNamespace()) ? Scope.GLOBAL : Scope.NAMESPACE);
            return;
        }
        scope.accept(Scope.WORKLOAD_SELECTOR);
        boolean everywhere = ns.equals(ctx.config.rootNamespace());
        Set<String> uids = new TreeSet<>();
        for (Context.PodWorkload w : ctx.workloads) {
            if ((everywhere || w.namespace().equals(ns)) && Specs.selects(labels, w.labels())) {
                uids.add(w.uid());
            }
        }
        uids.forEach(selected);
    }

    private Rule l4Rule(Map<String, Object> rule, String path, List<String> issues) {
        Specs.onlyKeys(rule, path, RULE_KEYS);
        Rule.Builder rb = Rule.newBuilder();
        List<Map<String, Object>> froms = Specs.maps(rule.get("from"), path + ".from");
        if (!froms.isEmpty()) {
            Clause.Builder c = Clause.newBuilder();
            for (int j = 0; j < froms.size(); j++) {
                String at = path + ".from[" + j + "]";
                Specs.onlyKeys(froms.get(j), at, FROM_KEYS);
                Map<String, Object> src = Specs.map(froms.get(j).get("source"), at + ".source");
                Specs.onlyKeys(src, at + ".source", SOURCE_KEYS);
                c.addMatches(sourceMatch(src, at + ".source", issues));
            }
            rb.addClauses(c);
        }
        List<Map<String, Object>> tos = Specs.maps(rule.get("to"), path + ".to");
        if (!tos.isEmpty()) {
            Clause.Builder c = Clause.newBuilder();
            for (int j = 0; j < tos.size(); j++) {
                String at = path + ".to[" + j + "]";
                Specs.onlyKeys(tos.get(j), at, TO_KEYS);
                Map<String, Object> op = Specs.map(tos.get(j).get("operation"), at + ".operation");
                Specs.onlyKeys(op, at + ".operation", OPERATION_KEYS);
                Match.Builder m = Match.newBuilder();
                field(op, "ports", at, issues, v -> Specs.port(v, at + ".operation.ports"), m::addDestinationPorts);
                field(op, "notPorts", at, issues, v -> Specs.port(v, at + ".operation.notPorts"),
                        m::addNotDestinationPorts);
                for (String l7 : List.of("hosts", "notHosts", "methods", "notMethods", "paths", "notPaths")) {
                    if (op.get(l7) != null) {
                        issues.add(at + ".operation." + l7 + ": " + NEEDS_WAYPOINT);
                    }
                }
                c.addMatches(m);
            }
            rb.addClauses(c);
        }
        List<Map<String, Object>> whens = Specs.maps(rule.get("when"), path + ".when");
        for (int j = 0; j < whens.size(); j++) {
            String at = path + ".when[" + j + "]";
            Map<String, Object> cond = whens.get(j);
            String key = whenKey(cond, at);
            Match.Builder m = Match.newBuilder();
            switch (key) {
                case "source.ip" -> {
                    cidrs(cond, "values", at, issues, m::addSourceIps);
                    cidrs(cond, "notValues", at, issues, m::addNotSourceIps);
                }
                case "destination.ip" -> {
                    cidrs(cond, "values", at, issues, m::addDestinationIps);
                    cidrs(cond, "notValues", at, issues, m::addNotDestinationIps);
                }
                case "source.namespace" -> {
                    strings(cond, "values", at, issues, false, m::addNamespaces);
                    strings(cond, "notValues", at, issues, false, m::addNotNamespaces);
                }
                case "source.principal" -> {
                    strings(cond, "values", at, issues, true, m::addPrincipals);
                    strings(cond, "notValues", at, issues, true, m::addNotPrincipals);
                }
                case "destination.port" -> {
                    field(cond, "values", at, issues, v -> Specs.port(v, at + ".values"), m::addDestinationPorts);
                    field(cond, "notValues", at, issues, v -> Specs.port(v, at + ".notValues"),
                            m::addNotDestinationPorts);
                }
                default -> {
                    issues.add(at + ".key: '" + key + "' is not an L4 attribute; " + NEEDS_WAYPOINT);
                    continue;
                }
            }
            rb.addClauses(Clause.newBuilder().addMatches(m));
        }
        return rb.build();
    }

    private Match sourceMatch(Map<String, Object> src, String at, List<String> issues) {
        Match.Builder m = Match.newBuilder();
        strings(src, "principals", at, issues, true, m::addPrincipals);
        strings(src, "notPrincipals", at, issues, true, m::addNotPrincipals);
        serviceAccounts(src, "serviceAccounts", at, issues, m::addPrincipals);
        serviceAccounts(src, "notServiceAccounts", at, issues, m::addNotPrincipals);
        strings(src, "namespaces", at, issues, false, m::addNamespaces);
        strings(src, "notNamespaces", at, issues, false, m::addNotNamespaces);
        cidrs(src, "ipBlocks", at, issues, m::addSourceIps);
        cidrs(src, "notIpBlocks", at, issues, m::addNotSourceIps);
        for (String l7 : List.of("requestPrincipals", "notRequestPrincipals", "remoteIpBlocks", "notRemoteIpBlocks")) {
            if (src.get(l7) != null) {
                issues.add(at + "." + l7 + ": " + NEEDS_WAYPOINT);
            }
        }
        return m.build();
    }

    /**
     * Converts every value of {@code m.key} and hands them to {@code sink}; if any value is bad,
     * none is (the whole field is dropped) and the reason is added to {@code issues}.
     */
    private static <T> void field(Map<String, Object> m, String key, String at, List<String> issues,
            Function<Object, T> convert, Consumer<T> sink) {
        Object raw = m.get(key);
        if (raw == null) {
            return;
        }
        List<T> values = new ArrayList<>();
        try {
            for (Object v : Specs.list(raw, at + "." + key)) {
                values.add(convert.apply(v));
            }
        } catch (Specs.Invalid e) {
            issues.add(e.getMessage());
            return;
        }
        values.forEach(sink);
    }

    private static void strings(Map<String, Object> m, String key, String at, List<String> issues,
            boolean principal, Consumer<StringMatch> sink) {
        String p = at + "." + key;
        field(m, key, at, issues, v -> Specs.istioString(Specs.string(v, p), p, principal), sink);
    }

    private static void cidrs(Map<String, Object> m, String key, String at, List<String> issues,
            Consumer<Cidr> sink) {
        String p = at + "." + key;
        field(m, key, at, issues, v -> Specs.cidr(Specs.string(v, p), p), sink);
    }

    /** Istio's {@code serviceAccounts: ["ns/sa"]}: the principal of that account in any trust domain. */
    private static void serviceAccounts(Map<String, Object> m, String key, String at, List<String> issues,
            Consumer<StringMatch> sink) {
        String p = at + "." + key;
        field(m, key, at, issues, v -> {
            String s = Specs.string(v, p);
            int slash = s == null ? -1 : s.indexOf('/');
            if (slash <= 0 || slash == s.length() - 1 || s.indexOf('/', slash + 1) >= 0 || s.contains("*")) {
                throw new Specs.Invalid(p + ": expected '<namespace>/<service account>': '" + s + "'");
            }
            return StringMatch.newBuilder()
                    .setSuffix("/ns/" + s.substring(0, slash) + "/sa/" + s.substring(slash + 1)).build();
        }, sink);
    }

    // ------------------------------------------------------------------ L7 (targetRefs)

    private L7Authorization l7(GenericKubernetesResource p, Map<String, Object> spec, Action action,
            List<Map<String, Object>> rules) {
        String ns = Specs.namespace(p);
        Set<String> targets = PolicyTargets.resolve(ctx, p, spec);
        L7Authorization.Builder b = L7Authorization.newBuilder().setName(p.getMetadata().getName()).setNamespace(ns)
                .setAction(action).addAllTargets(targets);
        for (int i = 0; i < rules.size(); i++) {
            String path = "spec.rules[" + i + "]";
            List<String> issues = new ArrayList<>();
            L7Rule r = l7Rule(rules.get(i), path, issues);
            if (!issues.isEmpty()) {
                if (action == Action.ALLOW) {
                    ctx.problem(p, path + " never matches (ALLOW fails closed): " + String.join("; ", issues));
                    continue;
                }
                // DENY and CUSTOM: the rule covers more requests (CUSTOM: more go to the authorizer).
                ctx.problem(p, path + ": ignored, so the rule " + (action == Action.CUSTOM
                        ? "sends more requests to the authorizer: " : "denies more broadly: ") + String.join("; ", issues));
            }
            b.addRules(r);
        }
        return b.build();
    }

    private L7Rule l7Rule(Map<String, Object> rule, String path, List<String> issues) {
        Specs.onlyKeys(rule, path, RULE_KEYS);
        L7Rule.Builder rb = L7Rule.newBuilder();
        List<Map<String, Object>> froms = Specs.maps(rule.get("from"), path + ".from");
        for (int j = 0; j < froms.size(); j++) {
            String at = path + ".from[" + j + "]";
            Specs.onlyKeys(froms.get(j), at, FROM_KEYS);
            Map<String, Object> src = Specs.map(froms.get(j).get("source"), at + ".source");
            String sat = at + ".source";
            Specs.onlyKeys(src, sat, SOURCE_KEYS);
            L7Source.Builder s = L7Source.newBuilder();
            strings(src, "principals", sat, issues, true, s::addPrincipals);
            strings(src, "notPrincipals", sat, issues, true, s::addNotPrincipals);
            serviceAccounts(src, "serviceAccounts", sat, issues, s::addPrincipals);
            serviceAccounts(src, "notServiceAccounts", sat, issues, s::addNotPrincipals);
            strings(src, "namespaces", sat, issues, false, s::addNamespaces);
            strings(src, "notNamespaces", sat, issues, false, s::addNotNamespaces);
            cidrs(src, "ipBlocks", sat, issues, s::addIpBlocks);
            cidrs(src, "notIpBlocks", sat, issues, s::addNotIpBlocks);
            strings(src, "requestPrincipals", sat, issues, false, s::addRequestPrincipals);
            strings(src, "notRequestPrincipals", sat, issues, false, s::addNotRequestPrincipals);
            for (String unsupported : List.of("remoteIpBlocks", "notRemoteIpBlocks")) {
                if (src.get(unsupported) != null) {
                    issues.add(sat + "." + unsupported + ": not supported");
                }
            }
            rb.addFrom(s);
        }
        List<Map<String, Object>> tos = Specs.maps(rule.get("to"), path + ".to");
        for (int j = 0; j < tos.size(); j++) {
            String at = path + ".to[" + j + "]";
            Specs.onlyKeys(tos.get(j), at, TO_KEYS);
            Map<String, Object> op = Specs.map(tos.get(j).get("operation"), at + ".operation");
            String oat = at + ".operation";
            Specs.onlyKeys(op, oat, OPERATION_KEYS);
            L7Operation.Builder o = L7Operation.newBuilder();
            field(op, "methods", oat, issues, v -> Specs.string(v, oat + ".methods"), o::addMethods);
            field(op, "notMethods", oat, issues, v -> Specs.string(v, oat + ".notMethods"), o::addNotMethods);
            strings(op, "paths", oat, issues, false, o::addPaths);
            strings(op, "notPaths", oat, issues, false, o::addNotPaths);
            field(op, "ports", oat, issues, v -> Specs.port(v, oat + ".ports"), o::addPorts);
            field(op, "notPorts", oat, issues, v -> Specs.port(v, oat + ".notPorts"), o::addNotPorts);
            strings(op, "hosts", oat, issues, false, o::addHosts);
            strings(op, "notHosts", oat, issues, false, o::addNotHosts);
            rb.addTo(o);
        }
        List<Map<String, Object>> whens = Specs.maps(rule.get("when"), path + ".when");
        for (int j = 0; j < whens.size(); j++) {
            String at = path + ".when[" + j + "]";
            Map<String, Object> cond = whens.get(j);
            String key = whenKey(cond, at);
            L7Condition.Builder c = L7Condition.newBuilder().setKey(key);
            int before = issues.size();
            switch (key) {
                case "source.ip", "remote.ip", "destination.ip" -> {
                    cidrs(cond, "values", at, issues, c::addIpBlocks);
                    cidrs(cond, "notValues", at, issues, c::addNotIpBlocks);
                }
                case "source.principal", "source.namespace" -> {
                    boolean principal = key.equals("source.principal");
                    strings(cond, "values", at, issues, principal, c::addValues);
                    strings(cond, "notValues", at, issues, principal, c::addNotValues);
                }
                case "destination.port" -> {
                    field(cond, "values", at, issues, v -> portString(v, at + ".values"), c::addValues);
                    field(cond, "notValues", at, issues, v -> portString(v, at + ".notValues"), c::addNotValues);
                }
                default -> {
                    String header = headerName(key);
                    if (header != null && HEADER_NAME.matcher(header).matches()) {
                        strings(cond, "values", at, issues, false, c::addValues);
                        strings(cond, "notValues", at, issues, false, c::addNotValues);
                    } else if (header != null) {
                        issues.add(at + ".key: '" + key + "' does not name a valid header name");
                    } else if (RequestAuthKey.valid(key)) {
                        strings(cond, "values", at, issues, false, c::addValues);
                        strings(cond, "notValues", at, issues, false, c::addNotValues);
                    } else if (key.startsWith("request.auth.")) {
                        issues.add(at + ".key: '" + key + "' is not a request.auth key the waypoint evaluates"
                                + " (principal, audiences, presenter, claims[<name>]...)");
                    } else {
                        issues.add(at + ".key: '" + key + "' is not evaluated by the waypoint");
                    }
                }
            }
            // A condition with a bad part is left out whole: in a DENY rule that denies more, and an
            // ALLOW rule with an issue is dropped by the caller.
            if (issues.size() == before) {
                rb.addWhen(c);
            }
        }
        return rb.build();
    }

    /** The name in {@code request.headers[<name>]}, or null for any other key. */
    private static String headerName(String key) {
        return key.startsWith("request.headers[") && key.endsWith("]")
                ? key.substring("request.headers[".length(), key.length() - 1) : null;
    }

    private static StringMatch portString(Object v, String path) {
        return StringMatch.newBuilder().setExact(Integer.toString(Specs.port(v, path))).build();
    }

    // ------------------------------------------------------------------ PeerAuthentication

    PeerAuthentication peerAuthentication(GenericKubernetesResource p) {
        Map<String, Object> spec = Specs.spec(p);
        Specs.onlyKeys(spec, "spec", PEER_AUTH_KEYS);
        String ns = Specs.namespace(p);
        PeerAuthentication.Builder b = PeerAuthentication.newBuilder().setName(p.getMetadata().getName())
                .setNamespace(ns);
        Map<String, Object> mtls = Specs.map(spec.get("mtls"), "spec.mtls");
        Specs.onlyKeys(mtls, "spec.mtls", Set.of("mode"));
        b.setMode(mode(mtls.get("mode"), "spec.mtls.mode"));
        scope(spec.get("selector"), ns, b::setScope, b::addSelectedWorkloads);
        Map<String, Object> ports = Specs.map(spec.get("portLevelMtls"), "spec.portLevelMtls");
        if (!ports.isEmpty() && b.getScope() != Scope.WORKLOAD_SELECTOR) {
            throw new Specs.Invalid("spec.portLevelMtls: only allowed with a selector");
        }
        for (Map.Entry<String, Object> e : ports.entrySet()) {
            String at = "spec.portLevelMtls." + e.getKey();
            int port = Specs.port(e.getKey(), at);
            Map<String, Object> pm = Specs.map(e.getValue(), at);
            Specs.onlyKeys(pm, at, Set.of("mode"));
            b.putPortModes(port, mode(pm.get("mode"), at + ".mode"));
        }
        return b.build();
    }

    private static PeerAuthentication.Mode mode(Object raw, String path) {
        String m = Specs.string(raw, path);
        if (m == null || m.isEmpty()) {
            return PeerAuthentication.Mode.UNSET;
        }
        return switch (m) {
            case "UNSET" -> PeerAuthentication.Mode.UNSET;
            case "PERMISSIVE" -> PeerAuthentication.Mode.PERMISSIVE;
            case "STRICT" -> PeerAuthentication.Mode.STRICT;
            case "DISABLE" -> PeerAuthentication.Mode.DISABLE;
            default -> throw new Specs.Invalid(path + ": unknown mode '" + m + "' (STRICT, PERMISSIVE, DISABLE, UNSET)");
        };
    }

    /** The key of one {@code when} condition, after checking its shape (shared by L4 and L7 rules). */
    private static String whenKey(Map<String, Object> cond, String at) {
        Specs.onlyKeys(cond, at, WHEN_KEYS);
        String key = Specs.string(cond.get("key"), at + ".key");
        if (key == null || key.isEmpty()) {
            throw new Specs.Invalid(at + ".key: required");
        }
        if (cond.get("values") == null && cond.get("notValues") == null) {
            throw new Specs.Invalid(at + ": values or notValues required");
        }
        return key;
    }
}
