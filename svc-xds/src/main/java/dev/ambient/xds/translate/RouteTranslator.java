package dev.ambient.xds.translate;

import dev.ambient.proto.l7.HeaderMatch;
import dev.ambient.proto.l7.Mirror;
import dev.ambient.proto.l7.PathMatch;
import dev.ambient.proto.l7.QueryParamMatch;
import dev.ambient.proto.l7.RetryPolicy;
import dev.ambient.proto.l7.Route;
import dev.ambient.proto.l7.RouteMatch;
import dev.ambient.proto.l7.ServiceRoutes;
import dev.ambient.proto.l7.TcpRoute;
import dev.ambient.proto.l7.WeightedBackend;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.Service;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Gateway API HTTPRoutes into one {@link ServiceRoutes} table per Service they attach to.
 *
 * <p>A parent of kind Service (Istio ambient's way, GAMMA) attaches the route to that service; a
 * parent of kind Gateway that is a waypoint attaches it to every service using that waypoint
 * (filtered by the route's {@code hostnames}, if any). Other Gateways are not served here.
 *
 * <p>Every (rule, match) pair becomes one {@link Route} with one match, and the table is ordered
 * by Gateway API precedence, so "first match wins" in the waypoint gives the Gateway API result:
 * exact path, then regular expression, then the longest prefix; then a method match; then more
 * header matches; then more query matches; then the oldest route, then namespace/name, then rule
 * order. A rule without matches matches every request (path prefix "/").
 *
 * <p>Filters ({@link RouteFilters}): RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect,
 * URLRewrite and RequestMirror (own namespace only, see {@link #mirrors}). Retries and timeouts as
 * Istio converts them: no {@code retry} = Istio's default policy in the waypoint,
 * {@code timeouts.backendRequest} per try with a {@code retry}, else for the whole request. An HTTPRoute with an unknown field or an unsupported feature (another filter
 * type, a regular-expression query match) is reported with the field and skipped; a parent that does not
 * exist is reported and skipped; a backend that does not exist is reported and left out (the
 * Gateway API would answer 500 for its share; here the other backends take it; a rule left
 * without any backend answers 500).
 */
final class RouteTranslator {

    private static final Set<String> SPEC_KEYS = Set.of("parentRefs", "hostnames", "rules");
    private static final Set<String> PARENT_KEYS = Set.of("group", "kind", "namespace", "name", "port", "sectionName");
    private static final Set<String> RULE_KEYS = Set.of("name", "matches", "filters", "backendRefs", "timeouts",
            "retry", "sessionPersistence");
    private static final Set<String> MATCH_KEYS = Set.of("path", "headers", "queryParams", "method");
    private static final Set<String> BACKEND_KEYS = Set.of("group", "kind", "name", "namespace", "port", "weight",
            "filters");
    private static final Set<String> METHODS = Set.of("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS",
            "TRACE", "PATCH");

    private final Context ctx;

    RouteTranslator(Context ctx) {
        this.ctx = ctx;
    }

    /** One table's routes with the keys that order them. */
    private record Entry(Route route, int pathRank, int prefixLength, boolean method, int headers, int queries,
            String created, String source, int rule, int match) {
    }

    private static final Comparator<Entry> PRECEDENCE = Comparator.comparingInt(Entry::pathRank)
            .thenComparing(Comparator.comparingInt(Entry::prefixLength).reversed())
            .thenComparing(e -> !e.method())
            .thenComparing(Comparator.comparingInt(Entry::headers).reversed())
            .thenComparing(Comparator.comparingInt(Entry::queries).reversed())
            .thenComparing(Entry::created)
            .thenComparing(Entry::source)
            .thenComparingInt(Entry::rule)
            .thenComparingInt(Entry::match);

    private static final class Table {
        final Service service;
        final List<Entry> entries = new ArrayList<>();
        final List<TcpEntry> tcpRoutes = new ArrayList<>();
        final Set<String> sources = new TreeSet<>();
        final Set<Integer> ports = new TreeSet<>();
        boolean allPorts;

        Table(Service service) {
            this.service = service;
        }
    }

    List<ServiceRoutes> translate(List<GenericKubernetesResource> httpRoutes,
            List<GenericKubernetesResource> grpcRoutes, List<GenericKubernetesResource> tcpRoutes) {
        Map<String, Table> tables = new TreeMap<>();
        for (GenericKubernetesResource r : httpRoutes) {
            guarded(r, "HTTPRoute", () -> route(r, tables, false));
        }
        for (GenericKubernetesResource r : grpcRoutes) {
            guarded(r, "GRPCRoute", () -> route(r, tables, true));
        }
        for (GenericKubernetesResource r : tcpRoutes) {
            guarded(r, "TCPRoute", () -> tcpRoute(r, tables));
        }
        List<ServiceRoutes> out = new ArrayList<>();
        for (Table t : tables.values()) {
            t.entries.sort(PRECEDENCE);
            ServiceRoutes.Builder b = ServiceRoutes.newBuilder().setServiceHostname(t.service.getHostname())
                    .setServiceNamespace(t.service.getNamespace()).addAllSources(t.sources);
            if (!t.allPorts) {
                b.addAllPorts(t.ports);
            }
            t.entries.forEach(e -> b.addRoutes(e.route()));
            t.tcpRoutes.sort(Comparator.comparing(TcpEntry::created).thenComparing(e -> e.route().getName()));
            t.tcpRoutes.forEach(e -> b.addTcpRoutes(e.route()));
            out.add(b.build());
        }
        return out;
    }

    private void guarded(GenericKubernetesResource r, String kind, Runnable translation) {
        try {
            if (r.getMetadata() == null || r.getMetadata().getName() == null) {
                ctx.problem(kind + "/?", "metadata.name is missing");
                return;
            }
            translation.run();
        } catch (Specs.Invalid e) {
            ctx.problem(r, e.getMessage());
        } catch (RuntimeException e) {
            ctx.problem(r, "cannot be translated: " + e);
        }
    }

    /** A TCPRoute in a table, with what orders it (the oldest first, as the Gateway API resolves conflicts). */
    private record TcpEntry(TcpRoute route, String created) {
    }

    /**
     * A TCPRoute (v1alpha2): one rule of weighted backends for the streams to the ports of its
     * parents. A waypoint serves one listener per service port, so a second rule is reported and
     * the route skipped rather than guessing which one a stream takes.
     */
    private void tcpRoute(GenericKubernetesResource r, Map<String, Table> tables) {
        String ns = Specs.namespace(r);
        String source = ns + "/" + r.getMetadata().getName();
        Map<String, Object> spec = Specs.spec(r);
        Specs.onlyKeys(spec, "spec", Set.of("parentRefs", "rules"));
        List<Map<String, Object>> rules = Specs.maps(spec.get("rules"), "spec.rules");
        if (rules.size() != 1) {
            throw new Specs.Invalid("spec.rules: exactly one rule is supported, not " + rules.size());
        }
        Map<String, Object> rule = rules.getFirst();
        Specs.onlyKeys(rule, "spec.rules[0]", Set.of("name", "backendRefs"));
        List<Map<String, Object>> refs = Specs.maps(rule.get("backendRefs"), "spec.rules[0].backendRefs");
        List<WeightedBackend> backends = new ArrayList<>();
        for (int j = 0; j < refs.size(); j++) {
            WeightedBackend b = backend(r, ns, refs.get(j), "spec.rules[0].backendRefs[" + j + "]");
            if (b != null) {
                backends.add(b);
            }
        }
        String created = r.getMetadata().getCreationTimestamp() == null ? "" : r.getMetadata().getCreationTimestamp();
        for (Attachment a : parents(r, spec, ns, List.of())) {
            Table t = tables.computeIfAbsent(a.service().getNamespace() + "/" + a.service().getHostname(),
                    k -> new Table(a.service()));
            t.sources.add(source);
            TcpRoute.Builder tr = TcpRoute.newBuilder().setName(source).addAllBackends(backends);
            if (a.port() != null) {
                tr.addPorts(a.port());
            }
            t.tcpRoutes.add(new TcpEntry(tr.build(), created));
        }
    }

    /** An HTTPRoute, or a GRPCRoute (whose rules become the same routes, matched on the gRPC path). */
    private void route(GenericKubernetesResource r, Map<String, Table> tables, boolean grpc) {
        String ns = Specs.namespace(r);
        String source = ns + "/" + r.getMetadata().getName();
        Map<String, Object> spec = Specs.spec(r);
        Specs.onlyKeys(spec, "spec", SPEC_KEYS);
        List<String> hostnames = Specs.strings(spec.get("hostnames"), "spec.hostnames");
        List<Map<String, Object>> rules = Specs.maps(spec.get("rules"), "spec.rules");

        // Translate the rules first: an invalid route attaches nowhere.
        List<List<Entry>> perRule = new ArrayList<>();
        String created = r.getMetadata().getCreationTimestamp() == null ? "" : r.getMetadata().getCreationTimestamp();
        for (int i = 0; i < rules.size(); i++) {
            perRule.add(grpc ? grpcRule(r, ns, source, created, i, rules.get(i))
                    : rule(r, ns, source, created, i, rules.get(i)));
        }

        for (Attachment a : parents(r, spec, ns, hostnames)) {
            Service svc = a.service();
            Table t = tables.computeIfAbsent(svc.getNamespace() + "/" + svc.getHostname(), k -> new Table(svc));
            t.sources.add(source);
            if (a.port() == null) {
                t.allPorts = true;
            } else {
                t.ports.add(a.port());
            }
            if (!svc.getNamespace().equals(ns)) {
                // A route may not copy another namespace's traffic: its mirrors stay off that service.
                boolean reported = false;
                for (List<Entry> entries : perRule) {
                    for (Entry e : entries) {
                        if (e.route().getMirrorsCount() > 0) {
                            if (!reported) {
                                reported = true;
                                ctx.problem(r, "RequestMirror: not applied to " + svc.getNamespace() + "/"
                                        + svc.getHostname() + ", a service of another namespace than the route's");
                            }
                            t.entries.add(new Entry(e.route().toBuilder().clearMirrors().build(), e.pathRank(),
                                    e.prefixLength(), e.method(), e.headers(), e.queries(), e.created(), e.source(),
                                    e.rule(), e.match()));
                        } else {
                            t.entries.add(e);
                        }
                    }
                }
            } else {
                perRule.forEach(t.entries::addAll);
            }
        }
    }

    /** A service a route attaches to, on one port or (null) all. */
    private record Attachment(Service service, Integer port) {
    }

    /** The services a route's parentRefs attach it to; a parent that cannot be used is reported and skipped. */
    private List<Attachment> parents(GenericKubernetesResource r, Map<String, Object> spec, String ns,
            List<String> hostnames) {
        List<Attachment> out = new ArrayList<>();
        List<Map<String, Object>> parents = Specs.maps(spec.get("parentRefs"), "spec.parentRefs");
        if (parents.isEmpty()) {
            throw new Specs.Invalid("spec.parentRefs: required");
        }
        for (int i = 0; i < parents.size(); i++) {
            String at = "spec.parentRefs[" + i + "]";
            Map<String, Object> parent = parents.get(i);
            Specs.onlyKeys(parent, at, PARENT_KEYS);
            String kind = Specs.string(parent.getOrDefault("kind", "Gateway"), at + ".kind");
            String group = Specs.string(parent.get("group"), at + ".group");
            String name = Specs.string(parent.get("name"), at + ".name");
            String parentNs = Specs.string(parent.getOrDefault("namespace", ns), at + ".namespace");
            Integer port = parent.get("port") == null ? null : Specs.port(parent.get("port"), at + ".port");
            if (name == null) {
                throw new Specs.Invalid(at + ".name: required");
            }
            List<Service> attached = new ArrayList<>();
            if (kind.equals("Service") && (group == null || group.isEmpty() || group.equals("core"))) {
                Service svc = ctx.translatedServices.get(parentNs + "/" + name);
                if (svc == null) {
                    ctx.problem(r, at + ": Service " + parentNs + "/" + name + " does not exist");
                    continue;
                }
                if (port != null && svc.getPortsList().stream().noneMatch(p -> p.getServicePort() == port)) {
                    ctx.problem(r, at + ": Service " + parentNs + "/" + name + " has no port " + port);
                    continue;
                }
                if (!svc.hasWaypoint()) {
                    ctx.problem(r, at + ": Service " + parentNs + "/" + name
                            + " has no waypoint; the routes apply once it has one");
                }
                attached.add(svc);
            } else if (kind.equals("ServiceEntry") && "networking.istio.io".equals(group)) {
                List<Service> hosts = ctx.entryServices(parentNs, name);
                if (hosts.isEmpty()) {
                    ctx.problem(r, at + ": ServiceEntry " + parentNs + "/" + name + " does not exist (or has no valid host)");
                    continue;
                }
                for (Service svc : hosts) {
                    if (port != null && svc.getPortsList().stream().noneMatch(p -> p.getServicePort() == port)) {
                        ctx.problem(r, at + ": ServiceEntry " + parentNs + "/" + name + " has no port " + port);
                        continue;
                    }
                    if (!svc.hasWaypoint()) {
                        ctx.problem(r, at + ": ServiceEntry " + parentNs + "/" + name + " host " + svc.getHostname()
                                + " has no waypoint; the routes apply once it has one");
                    }
                    attached.add(svc);
                }
            } else if (kind.equals("Gateway") && (group == null || group.equals("gateway.networking.k8s.io"))) {
                GenericKubernetesResource gw = ctx.gateways.get(parentNs + "/" + name);
                if (gw == null) {
                    ctx.problem(r, at + ": Gateway " + parentNs + "/" + name + " does not exist");
                    continue;
                }
                if (!ctx.isWaypoint(gw)) {
                    ctx.problem(r, at + ": Gateway " + parentNs + "/" + name
                            + " is not a waypoint; only waypoints are served");
                    continue;
                }
                String wpHost = ctx.config.serviceHostname(name, parentNs);
                for (Service svc : java.util.stream.Stream.concat(ctx.translatedServices.values().stream(),
                        ctx.translatedEntries.stream()).toList()) {
                    if (svc.hasWaypoint() && svc.getWaypoint().getHostname().getHostname().equals(wpHost)
                            && hostnameMatches(hostnames, svc)) {
                        attached.add(svc);
                    }
                }
            } else {
                ctx.problem(r, at + ": parent kind " + (group == null ? "" : group + "/") + kind + " is not supported");
                continue;
            }
            for (Service svc : attached) {
                out.add(new Attachment(svc, port));
            }
        }
        return out;
    }

    private static boolean hostnameMatches(List<String> hostnames, Service svc) {
        if (hostnames.isEmpty()) {
            return true;
        }
        String h = svc.getHostname();
        for (String want : hostnames) {
            if (want.equals(h) || want.equals(svc.getName()) || want.equals(svc.getName() + "." + svc.getNamespace())
                    || (want.startsWith("*.") && h.endsWith(want.substring(1)))) {
                return true;
            }
        }
        return false;
    }

    /** A rule's route before its matches and filters: its name and its backends (those that exist). */
    private Route.Builder ruleBase(GenericKubernetesResource r, String ns, String source, int index,
            Map<String, Object> rule, String at, Set<String> keys) {
        Specs.onlyKeys(rule, at, keys);
        if (rule.get("sessionPersistence") != null) {
            throw new Specs.Invalid(at + ".sessionPersistence: not supported");
        }
        String ruleName = Specs.string(rule.get("name"), at + ".name");
        Route.Builder base = Route.newBuilder()
                .setName(source + "/" + (ruleName != null ? ruleName : String.valueOf(index)));
        List<Map<String, Object>> backends = Specs.maps(rule.get("backendRefs"), at + ".backendRefs");
        for (int j = 0; j < backends.size(); j++) {
            WeightedBackend b = backend(r, ns, backends.get(j), at + ".backendRefs[" + j + "]");
            if (b != null) {
                base.addBackends(b);
            }
        }
        return base;
    }

    private List<Entry> rule(GenericKubernetesResource r, String ns, String source, String created, int index,
            Map<String, Object> rule) {
        String at = "spec.rules[" + index + "]";
        Route.Builder base = ruleBase(r, ns, source, index, rule, at, RULE_KEYS);
        RouteFilters filters = RouteFilters.read(Specs.maps(rule.get("filters"), at + ".filters"), at);
        if (base.getBackendsCount() == 0 && !filters.redirects()) {
            base.setDirectResponseStatus(500); // no valid backend: Gateway API says 500
        }
        Map<String, Object> timeouts = Specs.map(rule.get("timeouts"), at + ".timeouts");
        Specs.onlyKeys(timeouts, at + ".timeouts", Set.of("request", "backendRequest"));
        if (timeouts.get("request") != null) {
            long ms = Specs.durationMillis(Specs.string(timeouts.get("request"), at + ".timeouts.request"),
                    at + ".timeouts.request");
            base.setTimeoutMs((int) Math.min(ms, Integer.MAX_VALUE));
        }
        // As Istio converts an HTTPRoute: a rule without `retry` carries no policy (the waypoint
        // applies Istio's default); with one, attempts default to 2 and retry_on is Istio's
        // connection conditions plus the codes given (no 503 unless listed); attempts 0 = none.
        RetryPolicy.Builder retry = null;
        if (rule.get("retry") != null) {
            Map<String, Object> rt = Specs.map(rule.get("retry"), at + ".retry");
            Specs.onlyKeys(rt, at + ".retry", Set.of("attempts", "backoff", "codes"));
            retry = RetryPolicy.newBuilder();
            Integer attempts = Specs.integer(rt.get("attempts"), at + ".retry.attempts");
            retry.setAttempts(attempts == null ? 2 : attempts);
            if (rt.get("backoff") != null) {
                retry.setBackoffBaseMs((int) Specs.durationMillis(Specs.string(rt.get("backoff"),
                        at + ".retry.backoff"), at + ".retry.backoff"));
            }
            if (retry.getAttempts() > 0) {
                retry.addAllRetryOn(List.of("connect-failure", "refused-stream", "unavailable", "cancelled"));
            }
            for (Object code : Specs.list(rt.get("codes"), at + ".retry.codes")) {
                Integer c = Specs.integer(code, at + ".retry.codes");
                if (c == null || c < 400 || c > 599) {
                    throw new Specs.Invalid(at + ".retry.codes: not an HTTP error status: " + code);
                }
                if (retry.getAttempts() > 0) {
                    retry.addRetryOn(String.valueOf(c));
                }
            }
        }
        if (timeouts.get("backendRequest") != null) {
            long ms = Specs.durationMillis(Specs.string(timeouts.get("backendRequest"),
                    at + ".timeouts.backendRequest"), at + ".timeouts.backendRequest");
            int capped = (int) Math.min(ms, Integer.MAX_VALUE);
            if (retry != null) {
                retry.setPerTryTimeoutMs(capped);
            } else if (capped > 0) {
                base.setTimeoutMs(capped); // Istio: without a retry stanza it bounds the whole request
            }
        }
        if (retry != null) {
            base.setRetry(retry);
        }
        mirrors(r, ns, filters, base);

        List<Map<String, Object>> matches = Specs.maps(rule.get("matches"), at + ".matches");
        List<Entry> out = new ArrayList<>();
        if (matches.isEmpty()) {
            matches = List.of(Map.of());
        }
        for (int m = 0; m < matches.size(); m++) {
            String mat = at + ".matches[" + m + "]";
            Map<String, Object> match = matches.get(m);
            Specs.onlyKeys(match, mat, MATCH_KEYS);
            RouteMatch.Builder rm = RouteMatch.newBuilder();
            Map<String, Object> path = Specs.map(match.get("path"), mat + ".path");
            Specs.onlyKeys(path, mat + ".path", Set.of("type", "value"));
            String type = Specs.string(path.getOrDefault("type", "PathPrefix"), mat + ".path.type");
            String value = Specs.string(path.getOrDefault("value", "/"), mat + ".path.value");
            int pathRank;
            switch (type) {
                case "Exact" -> {
                    pathRank = 0;
                    rm.setPath(PathMatch.newBuilder().setKind(PathMatch.Kind.EXACT).setValue(value));
                }
                case "RegularExpression" -> {
                    pathRank = 1;
                    regex(value, mat + ".path.value");
                    rm.setPath(PathMatch.newBuilder().setKind(PathMatch.Kind.REGULAR_EXPRESSION).setValue(value));
                }
                case "PathPrefix" -> {
                    pathRank = 2;
                    if (!value.startsWith("/")) {
                        throw new Specs.Invalid(mat + ".path.value: must start with '/'");
                    }
                    rm.setPath(PathMatch.newBuilder().setKind(PathMatch.Kind.PREFIX).setValue(value));
                }
                default -> throw new Specs.Invalid(mat + ".path.type: unknown type '" + type + "'");
            }
            List<Map<String, Object>> headers = Specs.maps(match.get("headers"), mat + ".headers");
            headerMatches(headers, mat, rm);
            List<Map<String, Object>> queries = Specs.maps(match.get("queryParams"), mat + ".queryParams");
            for (int q = 0; q < queries.size(); q++) {
                String qat = mat + ".queryParams[" + q + "]";
                Map<String, Object> qm = queries.get(q);
                Specs.onlyKeys(qm, qat, Set.of("type", "name", "value"));
                String qtype = Specs.string(qm.getOrDefault("type", "Exact"), qat + ".type");
                if (!qtype.equals("Exact")) {
                    throw new Specs.Invalid(qat + ".type: only Exact query matches are supported");
                }
                rm.addQueryParams(QueryParamMatch.newBuilder().setName(required(qm, "name", qat))
                        .setValue(required(qm, "value", qat)));
            }
            String method = Specs.string(match.get("method"), mat + ".method");
            if (method != null) {
                if (!METHODS.contains(method)) {
                    throw new Specs.Invalid(mat + ".method: unknown method '" + method + "'");
                }
                rm.setMethod(method);
            }
            Route.Builder routeOfMatch = base.clone().addMatches(rm);
            filters.apply(routeOfMatch, type, value, mat);
            Route route = routeOfMatch.build();
            out.add(new Entry(route, pathRank, pathRank == 2 ? value.length() : 0, method != null,
                    headers.size(), queries.size(), created, source, index, m));
        }
        return out;
    }

    private static final Set<String> GRPC_RULE_KEYS = Set.of("name", "matches", "filters", "backendRefs",
            "sessionPersistence");
    /** gRPC service and method names as the Gateway API's GRPCMethodMatch allows them for Exact. */
    private static final Pattern GRPC_SERVICE = Pattern.compile("(?i)\\.?[a-z_][a-z_0-9]*(\\.[a-z_][a-z_0-9]*)*");
    private static final Pattern GRPC_METHOD = Pattern.compile("[A-Za-z_][A-Za-z_0-9]*");

    /**
     * A GRPCRoute rule: each match's method becomes a match on the request path {@code /service/method}
     * (Exact: the whole path, or the service's path prefix when only the service is given;
     * RegularExpression: a regular expression on the path, a missing part matching any name),
     * with its header matches. Filters: the header modifiers only (the Gateway API defines no
     * redirect or rewrite for gRPC). Ordered as HTTPRoutes are: a full method before a regular
     * expression before a service prefix, then more header matches.
     */
    private List<Entry> grpcRule(GenericKubernetesResource r, String ns, String source, String created, int index,
            Map<String, Object> rule) {
        String at = "spec.rules[" + index + "]";
        Route.Builder base = ruleBase(r, ns, source, index, rule, at, GRPC_RULE_KEYS);
        List<Map<String, Object>> filterList = Specs.maps(rule.get("filters"), at + ".filters");
        for (int i = 0; i < filterList.size(); i++) {
            String type = Specs.string(filterList.get(i).get("type"), at + ".filters[" + i + "].type");
            if ("RequestRedirect".equals(type) || "URLRewrite".equals(type)) {
                throw new Specs.Invalid(at + ".filters[" + i + "].type: " + type + " is not a GRPCRoute filter");
            }
        }
        RouteFilters filters = RouteFilters.read(filterList, at);
        mirrors(r, ns, filters, base);
        if (base.getBackendsCount() == 0) {
            base.setDirectResponseStatus(500); // no valid backend; a gRPC client sees it as grpc-status 13
        }
        List<Map<String, Object>> matches = Specs.maps(rule.get("matches"), at + ".matches");
        if (matches.isEmpty()) {
            matches = List.of(Map.of());
        }
        List<Entry> out = new ArrayList<>();
        for (int m = 0; m < matches.size(); m++) {
            String mat = at + ".matches[" + m + "]";
            Map<String, Object> match = matches.get(m);
            Specs.onlyKeys(match, mat, Set.of("method", "headers"));
            RouteMatch.Builder rm = RouteMatch.newBuilder();
            String pathType = "PathPrefix";
            String pathValue = "/";
            int pathRank = 2;
            if (match.get("method") != null) {
                String mm = mat + ".method";
                Map<String, Object> method = Specs.map(match.get("method"), mm);
                Specs.onlyKeys(method, mm, Set.of("type", "service", "method"));
                String type = Specs.string(method.getOrDefault("type", "Exact"), mm + ".type");
                String service = Specs.string(method.get("service"), mm + ".service");
                String name = Specs.string(method.get("method"), mm + ".method");
                if (service == null && name == null) {
                    throw new Specs.Invalid(mm + ": service or method is required");
                }
                switch (type) {
                    case "Exact" -> {
                        if (service != null && !GRPC_SERVICE.matcher(service).matches()) {
                            throw new Specs.Invalid(mm + ".service: '" + service + "' is not a gRPC service name");
                        }
                        if (name != null && !GRPC_METHOD.matcher(name).matches()) {
                            throw new Specs.Invalid(mm + ".method: '" + name + "' is not a gRPC method name");
                        }
                        if (service != null && name != null) {
                            pathType = "Exact";
                            pathValue = "/" + service + "/" + name;
                            pathRank = 0;
                        } else if (service != null) {
                            pathValue = "/" + service;
                        } else {
                            pathType = "RegularExpression";
                            pathValue = "/[^/]+/" + name;
                            pathRank = 1;
                        }
                    }
                    case "RegularExpression" -> {
                        if (service != null) {
                            regex(service, mm + ".service");
                        }
                        if (name != null) {
                            regex(name, mm + ".method");
                        }
                        pathType = "RegularExpression";
                        pathValue = "/(" + (service == null ? "[^/]+" : service) + ")/("
                                + (name == null ? "[^/]+" : name) + ")";
                        pathRank = 1;
                    }
                    default -> throw new Specs.Invalid(mm + ".type: unknown type '" + type + "'");
                }
            }
            rm.setPath(PathMatch.newBuilder().setKind(switch (pathType) {
                case "Exact" -> PathMatch.Kind.EXACT;
                case "RegularExpression" -> PathMatch.Kind.REGULAR_EXPRESSION;
                default -> PathMatch.Kind.PREFIX;
            }).setValue(pathValue));
            List<Map<String, Object>> headers = Specs.maps(match.get("headers"), mat + ".headers");
            headerMatches(headers, mat, rm);
            Route.Builder routeOfMatch = base.clone().addMatches(rm);
            filters.apply(routeOfMatch, pathType, pathValue, mat);
            out.add(new Entry(routeOfMatch.build(), pathRank, pathRank == 2 ? pathValue.length() : 0, false,
                    headers.size(), 0, created, source, index, m));
        }
        return out;
    }

    /**
     * A rule's RequestMirrors onto its route. A mirror copies every request the route takes, bodies
     * and credentials included, to its backend; so only a backend of the route's own namespace is
     * accepted (another namespace would need a ReferenceGrant, which is not supported), and
     * {@link #route} keeps mirrors off services of other namespaces the route attaches to. A mirror
     * that cannot be used is reported and left out; the route still applies (as Istio).
     */
    private void mirrors(GenericKubernetesResource r, String ns, RouteFilters filters, Route.Builder base) {
        for (RouteFilters.MirrorRef m : filters.mirrors()) {
            String mirrorNs = Specs.string(m.backendRef().getOrDefault("namespace", ns), m.at() + ".namespace");
            if (!mirrorNs.equals(ns)) {
                ctx.problem(r, m.at() + ".namespace: a mirror to namespace " + mirrorNs + " would copy this route's"
                        + " requests out of " + ns + "; only backends of the route's own namespace are mirrored"
                        + " (ReferenceGrant is not supported); mirror left out");
                continue;
            }
            WeightedBackend b = backend(r, ns, m.backendRef(), m.at());
            if (b != null) {
                base.addMirrors(Mirror.newBuilder().setService(b.getService()).setPort(b.getPort())
                        .setPercent(m.percent()));
            }
        }
    }

    private static void headerMatches(List<Map<String, Object>> headers, String mat, RouteMatch.Builder rm) {
        for (int h = 0; h < headers.size(); h++) {
            String hat = mat + ".headers[" + h + "]";
            Map<String, Object> hm = headers.get(h);
            Specs.onlyKeys(hm, hat, Set.of("type", "name", "value"));
            String htype = Specs.string(hm.getOrDefault("type", "Exact"), hat + ".type");
            String hname = required(hm, "name", hat);
            String hvalue = required(hm, "value", hat);
            HeaderMatch.Builder hb = HeaderMatch.newBuilder().setName(hname.toLowerCase()).setValue(hvalue);
            switch (htype) {
                case "Exact" -> hb.setKind(HeaderMatch.Kind.EXACT);
                case "RegularExpression" -> {
                    regex(hvalue, hat + ".value");
                    hb.setKind(HeaderMatch.Kind.REGULAR_EXPRESSION);
                }
                default -> throw new Specs.Invalid(hat + ".type: unknown type '" + htype + "'");
            }
            rm.addHeaders(hb);
        }
    }

    private static String required(Map<String, Object> m, String key, String at) {
        String v = Specs.string(m.get(key), at + "." + key);
        if (v == null) {
            throw new Specs.Invalid(at + "." + key + ": required");
        }
        return v;
    }

    private static void regex(String value, String at) {
        try {
            Pattern.compile(value);
        } catch (PatternSyntaxException e) {
            throw new Specs.Invalid(at + ": not a regular expression: " + e.getDescription());
        }
    }

    private WeightedBackend backend(GenericKubernetesResource r, String ns, Map<String, Object> ref, String at) {
        Specs.onlyKeys(ref, at, BACKEND_KEYS);
        if (ref.get("filters") != null && !Specs.list(ref.get("filters"), at + ".filters").isEmpty()) {
            throw new Specs.Invalid(at + ".filters: per-backend filters are not supported; route skipped");
        }
        String kind = Specs.string(ref.getOrDefault("kind", "Service"), at + ".kind");
        String group = Specs.string(ref.get("group"), at + ".group");
        String name = Specs.string(ref.get("name"), at + ".name");
        String backendNs = Specs.string(ref.getOrDefault("namespace", ns), at + ".namespace");
        Integer weight = Specs.integer(ref.getOrDefault("weight", 1), at + ".weight");
        if (name == null) {
            throw new Specs.Invalid(at + ".name: required");
        }
        if (weight < 0 || weight > 1_000_000) {
            throw new Specs.Invalid(at + ".weight: must be 0..1000000");
        }
        if (!kind.equals("Service") || !(group == null || group.isEmpty() || group.equals("core"))) {
            ctx.problem(r, at + ": backend kind " + kind + " is not supported; backend left out");
            return null;
        }
        Service svc = ctx.translatedServices.get(backendNs + "/" + name);
        if (svc == null) {
            ctx.problem(r, at + ": Service " + backendNs + "/" + name + " does not exist; backend left out");
            return null;
        }
        if (ref.get("port") == null) {
            ctx.problem(r, at + ".port: required for a Service backend; backend left out");
            return null;
        }
        int port = Specs.port(ref.get("port"), at + ".port");
        if (svc.getPortsList().stream().map(Port::getServicePort).noneMatch(p -> p == port)) {
            ctx.problem(r, at + ": Service " + backendNs + "/" + name + " has no port " + port
                    + "; backend left out");
            return null;
        }
        return WeightedBackend.newBuilder().setService(svc.getNamespace() + "/" + svc.getHostname()).setPort(port)
                .setWeight(weight).build();
    }
}
