package dev.ambient.ztunnel.state;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLParser;
import dev.ambient.proto.workload.Action;
import dev.ambient.proto.workload.Authorization;
import dev.ambient.proto.workload.Cidr;
import dev.ambient.proto.workload.Clause;
import dev.ambient.proto.workload.GatewayAddress;
import dev.ambient.proto.workload.Match;
import dev.ambient.proto.workload.NamespacedHostname;
import dev.ambient.proto.workload.NetworkAddress;
import dev.ambient.proto.workload.PeerAuthentication;
import dev.ambient.proto.workload.Port;
import dev.ambient.proto.workload.PortList;
import dev.ambient.proto.workload.Rule;
import dev.ambient.proto.workload.Scope;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.StringMatch;
import dev.ambient.proto.workload.TunnelProtocol;
import dev.ambient.proto.workload.Workload;
import dev.ambient.proto.workload.WorkloadStatus;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;

/**
 * Parses the standalone ztunnel configuration file (YAML) into a {@link StateSnapshot}.
 *
 * <p>The file is checked strictly, because in standalone mode it is the whole truth: every
 * problem found is reported (up to {@value #MAX_PROBLEMS}) in one {@link LocalConfigException},
 * each prefixed with the path of the offending value, e.g.
 * {@code workloads[2].workloadIps[0]: not an IP address: 'x'}. Unknown keys are errors (with a
 * "did you mean" hint), as are duplicate YAML keys, so a typo is never silently ignored.
 *
 * <h2>Format</h2>
 *
 * Four top-level keys, all optional; keys are camelCase; enum values are case-insensitive.
 *
 * <pre>{@code
 * workloads:
 * - uid: cluster1//Pod/default/sleep-1     # optional; default "<clusterId>//Pod/<namespace>/<name>"
 *   clusterId: cluster1                    # optional; default cluster1
 *   name: sleep-1                          # required
 *   namespace: default                     # required
 *   serviceAccount: sleep                  # default "default"
 *   workloadIps: [127.0.10.1]              # IPv4 or IPv6 literals (quote IPv6: "fd00::1"); no host names
 *   hostname: origin.example.com           # instead of workloadIps: a destination resolved by DNS when dialled
 *   node: node-a
 *   protocol: HBONE                        # HBONE | TCP (default TCP)
 *   trustDomain: cluster.local             # default cluster.local
 *   canonicalName: sleep                   # default: name
 *   canonicalRevision: v1                  # default "latest"
 *   workloadName: sleep                    # default: canonicalName
 *   status: Healthy                        # Healthy | Unhealthy (default Healthy)
 *   nodeAddress: 127.0.0.2                 # optional; where this workload's HBONE is received
 *   waypoint: {address: 127.0.30.1, port: 15008}
 *   # or      {hostname: waypoint.default.svc.cluster.local, namespace: default, port: 15008}
 *   #         (namespace defaults to the workload's; port defaults to the proxies' HBONE port, 15008)
 *   services:                              # the services this workload backs: "<namespace>/<hostname>"
 *     default/echo.default.svc.cluster.local: {80: 8080}   # {servicePort: targetPort}; {} = the service's
 *
 * services:
 * - name: echo                             # required
 *   namespace: default                     # required
 *   hostname: echo.default.svc.cluster.local   # default "<name>.<namespace>.svc.cluster.local"
 *   vips: [127.0.100.1]
 *   ports: {80: 8080}                      # {servicePort: targetPort}; target 0 = same as servicePort
 *   subjectAltNames: [spiffe://cluster.local/ns/default/sa/echo]
 *   waypoint: {address: 127.0.30.1}        # as for workloads
 *   exportTo: [egress]                     # namespaces that may resolve and reach it (default: all)
 *   resolution: Endpoints                  # Endpoints (its workloads) | Passthrough (where the client dialled)
 *   meshExternal: false                    # outside the mesh (ServiceEntry MESH_EXTERNAL)
 *
 * policies:                                # L4 authorization (Istio AuthorizationPolicy semantics)
 * - name: deny-legacy                      # required
 *   namespace: default                     # required
 *   scope: Namespace                       # Global | Namespace | WorkloadSelector
 *                                          # (default WorkloadSelector if selectedWorkloads is given,
 *                                          #  else Namespace; Global only in namespace istio-system)
 *   action: Deny                           # Allow | Deny | Custom (default Allow; Custom denies what it matches)
 *   dryRun: false                          # evaluated and reported, never enforced
 *   selectedWorkloads: [cluster1//Pod/default/echo-1]    # uids; only with scope WorkloadSelector
 *   rules:              # a policy matches if ANY rule matches; no rules: matches nothing
 *   - - principals: ["cluster.local/ns/legacy/sa/*"]
 *       # a rule is a list of clauses, ALL must match ([] matches everything);
 *       # a clause is a list of matches (or one match map), ANY must match;
 *       # a match holds if every field given holds:
 *       notPrincipals: []                  # strings: exact, "prefix*", "*suffix", "*" = any (presence);
 *       namespaces: []                     #   principals are "<trustDomain>/ns/<ns>/sa/<sa>"
 *       notNamespaces: []                  #   (a leading "spiffe://" is dropped)
 *       sourceIps: ["10.0.0.0/8", "127.0.10.1"]     # CIDRs or single addresses, IPv4 or IPv6
 *       notSourceIps: []
 *       destinationIps: []
 *       notDestinationIps: []
 *       destinationPorts: [8080]           # numbers (or numeric strings)
 *       notDestinationPorts: []
 *
 * peerAuthentications:
 * - name: strict                           # required
 *   namespace: default                     # required
 *   scope: Namespace                       # as for policies
 *   selectedWorkloads: []                  # as for policies
 *   mode: STRICT                           # STRICT | PERMISSIVE | DISABLE | UNSET (default UNSET: inherit)
 *   portLevelMtls: {8080: PERMISSIVE}      # port: mode (Istio's {8080: {mode: PERMISSIVE}} also accepted)
 * }</pre>
 *
 * <p>Checked besides types and enums: ports are 1..65535 (targets 0..65535); a workload uid, a
 * service {@code namespace/hostname}, a policy or peer authentication {@code namespace/name} is
 * unique; no address is claimed twice (workload IPs and service VIPs together); the services a
 * workload names and the workloads a policy selects exist in the file.
 *
 * <p>Instances are thread-safe and reusable.
 */
public final class LocalConfigParser {

    public static final String DEFAULT_CLUSTER_ID = "cluster1";
    public static final String DEFAULT_TRUST_DOMAIN = "cluster.local";
    public static final String DEFAULT_SERVICE_ACCOUNT = "default";
    public static final String DEFAULT_REVISION = "latest";
    /** At most this many problems are listed in one exception. */
    public static final int MAX_PROBLEMS = 20;

    private static final List<String> TOP_KEYS = List.of("workloads", "services", "policies", "peerAuthentications");
    private static final List<String> WORKLOAD_KEYS = List.of("uid", "clusterId", "name", "namespace",
            "serviceAccount", "workloadIps", "node", "protocol", "trustDomain", "canonicalName", "canonicalRevision",
            "workloadName", "status", "nodeAddress", "waypoint", "services", "hostname");
    private static final List<String> SERVICE_KEYS = List.of("name", "namespace", "hostname", "vips", "ports",
            "subjectAltNames", "waypoint", "exportTo", "resolution", "meshExternal");
    private static final Map<String, Service.Resolution> RESOLUTIONS =
            Map.of("Endpoints", Service.Resolution.ENDPOINTS, "Passthrough", Service.Resolution.PASSTHROUGH);
    private static final List<String> WAYPOINT_KEYS = List.of("address", "hostname", "namespace", "port");
    private static final List<String> POLICY_KEYS =
            List.of("name", "namespace", "scope", "action", "dryRun", "selectedWorkloads", "rules");
    private static final List<String> MATCH_KEYS = List.of("principals", "notPrincipals", "namespaces",
            "notNamespaces", "sourceIps", "notSourceIps", "destinationIps", "notDestinationIps", "destinationPorts",
            "notDestinationPorts");
    private static final List<String> PEER_AUTH_KEYS =
            List.of("name", "namespace", "scope", "selectedWorkloads", "mode", "portLevelMtls");
    private static final List<String> PORT_MTLS_KEYS = List.of("mode");

    private static final Map<String, TunnelProtocol> PROTOCOLS =
            Map.of("HBONE", TunnelProtocol.HBONE, "TCP", TunnelProtocol.NONE, "NONE", TunnelProtocol.NONE);
    private static final Map<String, WorkloadStatus> STATUSES =
            Map.of("HEALTHY", WorkloadStatus.HEALTHY, "UNHEALTHY", WorkloadStatus.UNHEALTHY);
    private static final Map<String, Scope> SCOPES = Map.of("GLOBAL", Scope.GLOBAL, "NAMESPACE", Scope.NAMESPACE,
            "WORKLOADSELECTOR", Scope.WORKLOAD_SELECTOR, "WORKLOAD_SELECTOR", Scope.WORKLOAD_SELECTOR);
    private static final Map<String, Action> ACTIONS = Map.of("ALLOW", Action.ALLOW, "DENY", Action.DENY,
            "CUSTOM", Action.CUSTOM);
    private static final Map<String, PeerAuthentication.Mode> MODES = Map.of(
            "STRICT", PeerAuthentication.Mode.STRICT, "PERMISSIVE", PeerAuthentication.Mode.PERMISSIVE,
            "DISABLE", PeerAuthentication.Mode.DISABLE, "UNSET", PeerAuthentication.Mode.UNSET);

    private static final Pattern SIMPLE_KEY = Pattern.compile("[A-Za-z0-9_-]+");

    private final ObjectMapper mapper;

    public LocalConfigParser() {
        YAMLFactory factory = YAMLFactory.builder()
                .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                // "key:" with nothing after it is null (absent), not ""
                .enable(YAMLParser.Feature.EMPTY_STRING_AS_NULL)
                // YAML 1.1 yes/no/on/off stay strings: a namespace called "no" must not become false
                .enable(YAMLParser.Feature.PARSE_BOOLEAN_LIKE_WORDS_AS_STRINGS)
                .build();
        this.mapper = new ObjectMapper(factory)
                .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
                .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    }

    /**
     * Parses {@code yaml}; an empty document (or only comments) gives {@link StateSnapshot#EMPTY}.
     *
     * @throws LocalConfigException listing every problem found, each with its path
     */
    public StateSnapshot parse(String yaml) throws LocalConfigException {
        JsonNode root;
        try {
            root = mapper.readTree(yaml);
        } catch (JsonProcessingException e) {
            throw new LocalConfigException(describe(e), e);
        } catch (RuntimeException e) {
            throw new LocalConfigException("not valid YAML: " + oneLine(String.valueOf(e.getMessage())), e);
        }
        if (root == null || root.isMissingNode() || root.isNull()) {
            return StateSnapshot.EMPTY;
        }
        Run run = new Run();
        StateSnapshot snapshot = run.document(new At("", root));
        if (!run.problems.isEmpty()) {
            List<String> problems = run.problems;
            if (problems.size() > MAX_PROBLEMS) {
                List<String> capped = new ArrayList<>(problems.subList(0, MAX_PROBLEMS));
                capped.add("... and " + (problems.size() - MAX_PROBLEMS) + " more");
                problems = capped;
            }
            throw new LocalConfigException(problems);
        }
        return snapshot;
    }

    private static String describe(JsonProcessingException e) {
        for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
            if (t instanceof MarkedYAMLException m && m.getProblem() != null) {
                // SnakeYAML's own message repeats the source with a caret; keep what and where
                StringBuilder sb = new StringBuilder("not valid YAML: ");
                if (m.getContext() != null) {
                    sb.append(oneLine(m.getContext())).append(": ");
                }
                sb.append(oneLine(m.getProblem()));
                Mark mark = m.getProblemMark();
                if (mark != null) {
                    sb.append(" (line ").append(mark.getLine() + 1).append(", column ").append(mark.getColumn() + 1)
                            .append(')');
                }
                return sb.toString();
            }
        }
        String message = e.getOriginalMessage();
        if (message != null && message.startsWith("Trailing token")) {
            message = "only one YAML document is allowed";
        } else if (message != null && message.startsWith("Duplicate field ")) {
            message = "duplicate key " + message.substring("Duplicate field ".length());
        }
        StringBuilder sb = new StringBuilder("not valid YAML: ").append(oneLine(String.valueOf(message)));
        JsonLocation loc = e.getLocation();
        if (loc != null && loc.getLineNr() > 0) {
            sb.append(" (line ").append(loc.getLineNr()).append(", column ").append(loc.getColumnNr()).append(')');
        }
        return sb.toString();
    }

    static String oneLine(String s) {
        return s.strip().replaceAll("\\s*[\\r\\n]+\\s*", " ");
    }

    /** A YAML node and where it is. */
    private record At(String path, JsonNode node) {
        At key(String key) {
            return new At(path.isEmpty() ? key : path + "." + key, node.get(key));
        }

        At mapEntry(String key, JsonNode value) {
            String k = SIMPLE_KEY.matcher(key).matches() ? "." + key : "[\"" + key + "\"]";
            return new At(path.isEmpty() ? k.substring(k.startsWith(".") ? 1 : 0) : path + k, value);
        }

        At index(int i) {
            return new At(path + "[" + i + "]", node.get(i));
        }

        String where() {
            return path.isEmpty() ? "(top level)" : path;
        }
    }

    /** Fields of one YAML map, absent and null-valued keys left out. */
    private record Fields(At at, Map<String, At> present) {
        At get(String key) {
            return present.get(key);
        }

        boolean has(String key) {
            return present.containsKey(key);
        }
    }

    /** One parse: collects problems and cross-references. */
    private final class Run {
        final List<String> problems = new ArrayList<>();

        // cross-reference bookkeeping
        final Map<String, String> uidPaths = new HashMap<>();
        final Map<InetAddress, String> addressPaths = new HashMap<>();
        final Map<String, String> servicePaths = new HashMap<>();
        final Map<String, String> policyPaths = new HashMap<>();
        final Map<String, String> peerAuthPaths = new HashMap<>();
        final List<Runnable> deferred = new ArrayList<>();

        void problem(At at, String message) {
            problems.add(at.where() + ": " + message);
        }

        StateSnapshot document(At root) {
            Fields top = fields(root, TOP_KEYS);
            if (top == null) {
                return StateSnapshot.EMPTY;
            }
            List<Workload> workloads = new ArrayList<>();
            List<Service> services = new ArrayList<>();
            List<Authorization> policies = new ArrayList<>();
            List<PeerAuthentication> peerAuths = new ArrayList<>();
            // sections in file order, so problems read like the file; cross-references at the end
            for (String section : top.present().keySet()) {
                At at = top.get(section);
                switch (section) {
                    case "workloads" -> forEach(at, item -> add(workloads, workload(item)));
                    case "services" -> forEach(at, item -> add(services, service(item)));
                    case "policies" -> forEach(at, item -> add(policies, policy(item)));
                    default -> forEach(at, item -> add(peerAuths, peerAuthentication(item)));
                }
            }
            deferred.forEach(Runnable::run);
            return StateSnapshot.of(workloads, services, policies, peerAuths);
        }

        // ---------------------------------------------------------------- workloads

        Workload workload(At at) {
            Fields f = fields(at, WORKLOAD_KEYS);
            if (f == null) {
                return null;
            }
            String name = required(f, "name");
            String namespace = required(f, "namespace");
            String clusterId = optional(f, "clusterId", DEFAULT_CLUSTER_ID);
            String uid = optional(f, "uid", clusterId + "//Pod/" + namespace + "/" + name);
            String canonicalName = optional(f, "canonicalName", name);
            Workload.Builder b = Workload.newBuilder()
                    .setUid(uid)
                    .setName(name)
                    .setNamespace(namespace)
                    .setClusterId(clusterId)
                    .setServiceAccount(optional(f, "serviceAccount", DEFAULT_SERVICE_ACCOUNT))
                    .setNode(optional(f, "node", ""))
                    .setTunnelProtocol(enumValue(f.get("protocol"), PROTOCOLS, TunnelProtocol.NONE, "HBONE, TCP"))
                    .setTrustDomain(optional(f, "trustDomain", DEFAULT_TRUST_DOMAIN))
                    .setCanonicalName(canonicalName)
                    .setCanonicalRevision(optional(f, "canonicalRevision", DEFAULT_REVISION))
                    .setWorkloadName(optional(f, "workloadName", canonicalName))
                    .setStatus(enumValue(f.get("status"), STATUSES, WorkloadStatus.HEALTHY, "Healthy, Unhealthy"));
            if (f.has("uid") || !name.isEmpty() && !namespace.isEmpty()) {
                At uidAt = f.has("uid") ? f.get("uid") : at;
                String previous = uidPaths.putIfAbsent(uid, at.path());
                if (previous != null) {
                    problem(uidAt, "duplicate uid '" + uid + "' (also " + previous + ")");
                }
            }
            for (At ipAt : list(f.get("workloadIps"))) {
                InetAddress ip = ip(ipAt);
                if (ip != null) {
                    claim(ipAt, ip);
                    b.addAddresses(Addresses.toBytes(ip));
                }
            }
            if (f.has("hostname")) {
                String host = text(f.get("hostname"));
                if (host != null && (host.isBlank() || !host.matches("[A-Za-z0-9_.-]{1,253}"))) {
                    problem(f.get("hostname"), "not a host name: '" + host + "'");
                } else if (host != null) {
                    b.setHostname(host);
                }
            }
            if (f.has("nodeAddress")) {
                InetAddress ip = ip(f.get("nodeAddress"));
                if (ip != null) {
                    b.setNodeAddress(Addresses.toBytes(ip));
                }
            }
            if (f.has("waypoint")) {
                GatewayAddress waypoint = waypoint(f.get("waypoint"), namespace);
                if (waypoint != null) {
                    b.setWaypoint(waypoint);
                }
            }
            for (Map.Entry<String, At> e : map(f.get("services")).entrySet()) {
                String key = e.getKey();
                At entry = e.getValue();
                int slash = key.indexOf('/');
                if (slash <= 0 || slash == key.length() - 1 || key.indexOf('/', slash + 1) >= 0) {
                    problem(entry, "expected a key \"<namespace>/<hostname>\", got '" + key + "'");
                    continue;
                }
                deferred.add(() -> {
                    if (!servicePaths.containsKey(key)) {
                        problem(entry, "no service with namespace/hostname '" + key + "' in services");
                    }
                });
                b.putServices(key, PortList.newBuilder().addAllPorts(portMap(entry)).build());
            }
            return b.build();
        }

        GatewayAddress waypoint(At at, String defaultNamespace) {
            Fields f = fields(at, WAYPOINT_KEYS);
            if (f == null) {
                return null;
            }
            GatewayAddress.Builder b = GatewayAddress.newBuilder();
            // Absent: 0, meaning "the HBONE port the proxies are configured with" (15008 by default).
            Integer port = f.has("port") ? port(f.get("port"), false) : Integer.valueOf(0);
            b.setHboneMtlsPort(port == null ? 0 : port);
            if (f.has("address") && f.has("hostname")) {
                problem(at, "give either address or hostname, not both");
                return null;
            }
            if (f.has("address")) {
                if (f.has("namespace")) {
                    problem(f.get("namespace"), "only allowed with hostname");
                }
                InetAddress ip = ip(f.get("address"));
                if (ip != null) {
                    b.setAddress(NetworkAddress.newBuilder().setAddress(Addresses.toBytes(ip)));
                }
            } else if (f.has("hostname")) {
                String hostname = required(f, "hostname");
                String namespace = optional(f, "namespace", defaultNamespace);
                b.setHostname(NamespacedHostname.newBuilder().setNamespace(namespace).setHostname(hostname));
            } else {
                problem(at, "needs an address or a hostname");
                return null;
            }
            return b.build();
        }

        // ---------------------------------------------------------------- services

        Service service(At at) {
            Fields f = fields(at, SERVICE_KEYS);
            if (f == null) {
                return null;
            }
            String name = required(f, "name");
            String namespace = required(f, "namespace");
            String hostname = optional(f, "hostname", name + "." + namespace + ".svc.cluster.local");
            Service.Builder b = Service.newBuilder().setName(name).setNamespace(namespace).setHostname(hostname);
            String key = namespace + "/" + hostname;
            String previous = servicePaths.putIfAbsent(key, at.path());
            if (previous != null) {
                problem(f.has("hostname") ? f.get("hostname") : at,
                        "duplicate service '" + key + "' (also " + previous + ")");
            }
            for (At vipAt : list(f.get("vips"))) {
                InetAddress ip = ip(vipAt);
                if (ip != null) {
                    claim(vipAt, ip);
                    b.addAddresses(NetworkAddress.newBuilder().setAddress(Addresses.toBytes(ip)));
                }
            }
            b.addAllPorts(portMap(f.get("ports")));
            for (At san : list(f.get("subjectAltNames"))) {
                String s = text(san);
                if (s != null) {
                    if (s.isBlank()) {
                        problem(san, "must not be empty");
                    }
                    b.addSubjectAltNames(s);
                }
            }
            if (f.has("waypoint")) {
                GatewayAddress waypoint = waypoint(f.get("waypoint"), namespace);
                if (waypoint != null) {
                    b.setWaypoint(waypoint);
                }
            }
            for (At ns : list(f.get("exportTo"))) {
                String s = text(ns);
                if (s != null) {
                    b.addExportTo(s);
                }
            }
            b.setResolution(enumValue(f.get("resolution"), RESOLUTIONS, Service.Resolution.ENDPOINTS,
                    "Endpoints, Passthrough"));
            b.setMeshExternal(bool(f.get("meshExternal"), false));
            return b.build();
        }

        /** {@code {servicePort: targetPort}}; target 0 = same as the service port. */
        List<Port> portMap(At at) {
            List<Port> ports = new ArrayList<>();
            for (Map.Entry<String, At> e : map(at).entrySet()) {
                Integer servicePort = portNumber(e.getValue(), e.getKey(), false);
                Integer target = port(e.getValue(), true);
                if (servicePort != null && target != null) {
                    ports.add(Port.newBuilder().setServicePort(servicePort).setTargetPort(target).build());
                }
            }
            return ports;
        }

        void claim(At at, InetAddress ip) {
            String previous = addressPaths.putIfAbsent(ip, at.path());
            if (previous != null) {
                problem(at, "duplicate address " + Addresses.format(ip) + " (also " + previous + ")");
            }
        }

        // ---------------------------------------------------------------- policies

        Authorization policy(At at) {
            Fields f = fields(at, POLICY_KEYS);
            if (f == null) {
                return null;
            }
            String name = required(f, "name");
            String namespace = required(f, "namespace");
            Authorization.Builder b = Authorization.newBuilder().setName(name).setNamespace(namespace);
            unique(policyPaths, at, namespace + "/" + name, "policy");
            b.setScope(scope(f, namespace));
            b.addAllSelectedWorkloads(selectedWorkloads(f));
            b.setAction(enumValue(f.get("action"), ACTIONS, Action.ALLOW, "Allow, Deny, Custom"));
            b.setDryRun(bool(f.get("dryRun"), false));
            for (At ruleAt : list(f.get("rules"))) {
                Rule rule = rule(ruleAt);
                if (rule != null) {
                    b.addRules(rule);
                }
            }
            return b.build();
        }

        Rule rule(At at) {
            if (!at.node().isArray()) {
                problem(at, "expected a rule: a list of clauses, each a list of matches or one match map; got "
                        + kind(at.node()));
                return null;
            }
            Rule.Builder b = Rule.newBuilder();
            for (At clauseAt : list(at)) {
                Clause.Builder clause = Clause.newBuilder();
                if (clauseAt.node().isObject()) {
                    clause.addMatches(match(clauseAt));
                } else if (clauseAt.node().isArray()) {
                    if (clauseAt.node().isEmpty()) {
                        problem(clauseAt, "a clause needs at least one match");
                    }
                    for (At matchAt : list(clauseAt)) {
                        clause.addMatches(match(matchAt));
                    }
                } else {
                    problem(clauseAt, "expected a clause: a list of matches or one match map; got "
                            + kind(clauseAt.node()));
                }
                b.addClauses(clause);
            }
            return b.build();
        }

        Match match(At at) {
            Match.Builder b = Match.newBuilder();
            Fields f = fields(at, MATCH_KEYS);
            if (f == null) {
                return b.build();
            }
            stringMatches(f.get("principals"), true, b::addPrincipals);
            stringMatches(f.get("notPrincipals"), true, b::addNotPrincipals);
            stringMatches(f.get("namespaces"), false, b::addNamespaces);
            stringMatches(f.get("notNamespaces"), false, b::addNotNamespaces);
            cidrs(f.get("sourceIps"), b::addSourceIps);
            cidrs(f.get("notSourceIps"), b::addNotSourceIps);
            cidrs(f.get("destinationIps"), b::addDestinationIps);
            cidrs(f.get("notDestinationIps"), b::addNotDestinationIps);
            for (At p : list(f.get("destinationPorts"))) {
                Integer port = port(p, false);
                if (port != null) {
                    b.addDestinationPorts(port);
                }
            }
            for (At p : list(f.get("notDestinationPorts"))) {
                Integer port = port(p, false);
                if (port != null) {
                    b.addNotDestinationPorts(port);
                }
            }
            return b.build();
        }

        /** Istio string forms: exact, "prefix*", "*suffix", "*" (presence). */
        void stringMatches(At at, boolean principal, Consumer<StringMatch> sink) {
            for (At item : list(at)) {
                String s = text(item);
                if (s == null) {
                    continue;
                }
                if (principal && s.startsWith("spiffe://")) {
                    s = s.substring("spiffe://".length());
                }
                if (s.isEmpty()) {
                    problem(item, "must not be empty (use \"*\" for any value)");
                    continue;
                }
                StringMatch.Builder m = StringMatch.newBuilder();
                String core;
                if (s.equals("*")) {
                    sink.accept(m.setPresence(true).build());
                    continue;
                } else if (s.startsWith("*")) {
                    core = s.substring(1);
                    m.setSuffix(core);
                } else if (s.endsWith("*")) {
                    core = s.substring(0, s.length() - 1);
                    m.setPrefix(core);
                } else {
                    core = s;
                    m.setExact(core);
                }
                if (core.indexOf('*') >= 0) {
                    problem(item, "'*' is only allowed at the start or the end: '" + s + "'");
                    continue;
                }
                sink.accept(m.build());
            }
        }

        void cidrs(At at, Consumer<Cidr> sink) {
            for (At item : list(at)) {
                String s = text(item);
                if (s == null) {
                    continue;
                }
                int slash = s.indexOf('/');
                String addressPart = slash < 0 ? s : s.substring(0, slash);
                InetAddress ip;
                try {
                    ip = Addresses.parseLiteral(addressPart);
                } catch (IllegalArgumentException e) {
                    problem(item, "not an IP address or CIDR: '" + s + "'");
                    continue;
                }
                int bits = ip.getAddress().length * 8;
                int length = bits;
                if (slash >= 0) {
                    String lengthPart = s.substring(slash + 1);
                    if (!lengthPart.matches("\\d{1,3}") || Integer.parseInt(lengthPart) > bits) {
                        problem(item, "prefix length must be 0.." + bits + ": '" + s + "'");
                        continue;
                    }
                    length = Integer.parseInt(lengthPart);
                }
                sink.accept(Cidr.newBuilder().setAddress(Addresses.toBytes(ip)).setLength(length).build());
            }
        }

        // ---------------------------------------------------------------- peer authentication

        PeerAuthentication peerAuthentication(At at) {
            Fields f = fields(at, PEER_AUTH_KEYS);
            if (f == null) {
                return null;
            }
            String name = required(f, "name");
            String namespace = required(f, "namespace");
            unique(peerAuthPaths, at, namespace + "/" + name, "peer authentication");
            PeerAuthentication.Builder b = PeerAuthentication.newBuilder()
                    .setName(name)
                    .setNamespace(namespace)
                    .setScope(scope(f, namespace))
                    .addAllSelectedWorkloads(selectedWorkloads(f))
                    .setMode(mode(f.get("mode")));
            for (Map.Entry<String, At> e : map(f.get("portLevelMtls")).entrySet()) {
                Integer port = portNumber(e.getValue(), e.getKey(), false);
                At value = e.getValue();
                PeerAuthentication.Mode mode;
                if (value.node().isObject()) {
                    Fields inner = fields(value, PORT_MTLS_KEYS);
                    mode = inner == null ? null : mode(inner.get("mode"));
                } else {
                    mode = mode(value);
                }
                if (port != null && mode != null) {
                    b.putPortModes(port, mode);
                }
            }
            return b.build();
        }

        PeerAuthentication.Mode mode(At at) {
            return enumValue(at, MODES, PeerAuthentication.Mode.UNSET, "STRICT, PERMISSIVE, DISABLE, UNSET");
        }

        // ---------------------------------------------------------------- shared by policies

        Scope scope(Fields f, String namespace) {
            Scope dflt = f.has("selectedWorkloads") ? Scope.WORKLOAD_SELECTOR : Scope.NAMESPACE;
            Scope scope = enumValue(f.get("scope"), SCOPES, dflt, "Global, Namespace, WorkloadSelector");
            if (scope == Scope.GLOBAL && !StateSnapshot.ROOT_NAMESPACE.equals(namespace)) {
                problem(f.get("scope"), "scope Global is only allowed in the root namespace "
                        + StateSnapshot.ROOT_NAMESPACE + " (use Namespace)");
            }
            if (scope != Scope.WORKLOAD_SELECTOR && f.has("selectedWorkloads")) {
                problem(f.get("selectedWorkloads"), "only allowed with scope WorkloadSelector");
            }
            if (scope == Scope.WORKLOAD_SELECTOR && !f.has("selectedWorkloads")) {
                problem(f.has("scope") ? f.get("scope") : f.at(), "scope WorkloadSelector needs selectedWorkloads");
            }
            return scope;
        }

        List<String> selectedWorkloads(Fields f) {
            List<String> uids = new ArrayList<>();
            for (At item : list(f.get("selectedWorkloads"))) {
                String uid = text(item);
                if (uid == null) {
                    continue;
                }
                uids.add(uid);
                deferred.add(() -> {
                    if (!uidPaths.containsKey(uid)) {
                        problem(item, "no workload with uid '" + uid + "' in workloads");
                    }
                });
            }
            return uids;
        }

        void unique(Map<String, String> seen, At at, String key, String what) {
            String previous = seen.putIfAbsent(key, at.path());
            if (previous != null) {
                problem(at, "duplicate " + what + " '" + key + "' (also " + previous + ")");
            }
        }

        // ---------------------------------------------------------------- YAML accessors

        /** The keys of a map, checking that each is allowed; null (with a problem) if not a map. */
        Fields fields(At at, List<String> allowed) {
            if (!at.node().isObject()) {
                problem(at, "expected a map with keys " + String.join(", ", allowed) + "; got " + kind(at.node()));
                return null;
            }
            Map<String, At> present = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> e : at.node().properties()) {
                String key = e.getKey();
                At child = at.key(key);
                if (!allowed.contains(key)) {
                    String suggestion = closest(key, allowed);
                    problem(child, "unknown key" + (suggestion != null
                            ? "; did you mean '" + suggestion + "'?"
                            : " (expected one of " + String.join(", ", allowed) + ")"));
                } else if (!e.getValue().isNull()) {
                    present.put(key, child);
                }
            }
            return new Fields(at, present);
        }

        String required(Fields f, String key) {
            At at = f.get(key);
            if (at == null) {
                problem(f.at(), "missing required key '" + key + "'");
                return "";
            }
            String s = text(at);
            if (s != null && s.isBlank()) {
                problem(at, "must not be empty");
            }
            return s == null ? "" : s;
        }

        String optional(Fields f, String key, String dflt) {
            At at = f.get(key);
            if (at == null) {
                return dflt;
            }
            String s = text(at);
            if (s != null && s.isBlank()) {
                problem(at, "must not be empty (leave the key out for the default)");
            }
            return s == null ? dflt : s;
        }

        String text(At at) {
            JsonNode n = at.node();
            if (n.isTextual()) {
                return n.textValue();
            }
            if (n.isNumber() || n.isBoolean()) {
                return n.asText();
            }
            problem(at, "expected a string; got " + kind(n));
            return null;
        }

        List<At> list(At at) {
            if (at == null || at.node() == null || at.node().isNull()) {
                return List.of();
            }
            if (!at.node().isArray()) {
                problem(at, "expected a list; got " + kind(at.node()));
                return List.of();
            }
            List<At> out = new ArrayList<>(at.node().size());
            for (int i = 0; i < at.node().size(); i++) {
                out.add(at.index(i));
            }
            return out;
        }

        Map<String, At> map(At at) {
            if (at == null || at.node() == null || at.node().isNull()) {
                return Map.of();
            }
            if (!at.node().isObject()) {
                problem(at, "expected a map; got " + kind(at.node()));
                return Map.of();
            }
            Map<String, At> out = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> e : at.node().properties()) {
                out.put(e.getKey(), at.mapEntry(e.getKey(), e.getValue()));
            }
            return out;
        }

        void forEach(At at, Consumer<At> action) {
            for (At item : list(at)) {
                action.accept(item);
            }
        }

        InetAddress ip(At at) {
            JsonNode n = at.node();
            if (!n.isValueNode()) {
                problem(at, "expected an IP address; got " + kind(n));
                return null;
            }
            String s = n.asText();
            try {
                return Addresses.parseLiteral(s);
            } catch (IllegalArgumentException e) {
                String why = e.getMessage();
                problem(at, "not an IP address: '" + s + "'"
                        + (why == null || why.startsWith("not an") ? "" : " (" + why + ")"));
                return null;
            }
        }

        Integer port(At at, boolean allowZero) {
            JsonNode n = at.node();
            if (n.isNull()) {
                problem(at, "expected a port number");
                return null;
            }
            if (!n.isValueNode()) {
                problem(at, "expected a port number; got " + kind(n));
                return null;
            }
            return portNumber(at, n.asText(), allowZero);
        }

        Integer portNumber(At at, String text, boolean allowZero) {
            int min = allowZero ? 0 : 1;
            if (text.matches("\\d{1,5}")) {
                int p = Integer.parseInt(text);
                if (p >= min && p <= 65535) {
                    return p;
                }
            }
            problem(at, "not a port number (" + min + "..65535): '" + text + "'");
            return null;
        }

        boolean bool(At at, boolean dflt) {
            if (at == null) {
                return dflt;
            }
            JsonNode n = at.node();
            if (n.isBoolean()) {
                return n.booleanValue();
            }
            if (n.isTextual() && (n.textValue().equalsIgnoreCase("true") || n.textValue().equalsIgnoreCase("false"))) {
                return Boolean.parseBoolean(n.textValue().toLowerCase(Locale.ROOT));
            }
            problem(at, "expected true or false; got '" + n.asText() + "'");
            return dflt;
        }

        <E> E enumValue(At at, Map<String, E> values, E dflt, String allowed) {
            if (at == null) {
                return dflt;
            }
            String s = at.node().isValueNode() ? at.node().asText() : null;
            E value = s == null ? null : values.get(s.toUpperCase(Locale.ROOT));
            if (value == null) {
                problem(at, "expected one of " + allowed + "; got "
                        + (s == null ? kind(at.node()) : "'" + s + "'"));
                return dflt;
            }
            return value;
        }
    }

    private static <T> void add(List<T> out, T item) {
        if (item != null) {
            out.add(item);
        }
    }

    private static String kind(JsonNode n) {
        if (n == null || n.isNull()) {
            return "nothing";
        }
        if (n.isObject()) {
            return "a map";
        }
        if (n.isArray()) {
            return "a list";
        }
        return "'" + n.asText() + "'";
    }

    /** The allowed key closest to {@code key} if it is a plausible typo of it. */
    private static String closest(String key, List<String> allowed) {
        String best = null;
        int bestDistance = Integer.MAX_VALUE;
        for (String candidate : allowed) {
            int d = distance(key.toLowerCase(Locale.ROOT), candidate.toLowerCase(Locale.ROOT));
            if (d < bestDistance) {
                bestDistance = d;
                best = candidate;
            }
        }
        return bestDistance <= Math.max(1, Math.min(3, key.length() / 3)) ? best : null;
    }

    /** Optimal-string-alignment distance: insertions, deletions, substitutions, adjacent swaps. */
    private static int distance(String a, String b) {
        int[][] d = new int[a.length() + 1][b.length() + 1];
        for (int i = 0; i <= a.length(); i++) {
            d[i][0] = i;
        }
        for (int j = 0; j <= b.length(); j++) {
            d[0][j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                d[i][j] = Math.min(Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + cost);
                if (i > 1 && j > 1 && a.charAt(i - 1) == b.charAt(j - 2) && a.charAt(i - 2) == b.charAt(j - 1)) {
                    d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
                }
            }
        }
        return d[a.length()][b.length()];
    }
}
