package dev.ambient.waypoint.authz;

import dev.ambient.auth.RequestAuthKey;
import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.l7.L7Authorization;
import dev.ambient.proto.l7.L7Condition;
import dev.ambient.proto.l7.L7Operation;
import dev.ambient.proto.l7.L7Rule;
import dev.ambient.proto.l7.L7Source;
import dev.ambient.proto.workload.Action;
import dev.ambient.proto.workload.Cidr;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.StringMatch;
import dev.ambient.waypoint.authn.RequestAuth;
import io.netty.handler.codec.http.HttpHeaders;
import java.net.InetAddress;
import java.util.List;
import java.util.Optional;

/**
 * L7 AuthorizationPolicy as Istio's waypoint enforces it: the policies attached to this waypoint's
 * Gateway or to the destination Service apply; any DENY policy with a matching rule denies; then,
 * if any ALLOW policy applies, one of its rules must match; otherwise the request is allowed.
 *
 * <p>Fail closed, with Istio's semantics, for what a request cannot answer: the HTTP fields
 * (methods, paths, hosts, {@code request.headers[...]}) of a TCP stream, and condition keys this
 * waypoint does not evaluate. In a DENY rule such a field is ignored, so the rule denies more; an
 * ALLOW rule with such a field matches nothing. So an ALLOW made only of HTTP rules denies TCP.
 */
public final class L7Authorizer {

    /**
     * What a policy is matched against: the connection, and the HTTP request when there is one.
     *
     * @param sourceIp the client's address as this waypoint saw the connection (never a client's Forwarded)
     * @param destinationIp the address the client asked for (the service VIP or the workload)
     * @param http null for a stream forwarded as TCP
     * @param auth what a verified JWT says ({@link RequestAuth#NONE} without one)
     */
    public record Request(SpiffeId peer, InetAddress sourceIp, InetAddress destinationIp, int port, Http http,
            RequestAuth auth) {
        public Request(SpiffeId peer, InetAddress sourceIp, InetAddress destinationIp, int port, Http http) {
            this(peer, sourceIp, destinationIp, port, http, RequestAuth.NONE);
        }
    }

    /** The HTTP part of a request; the path is the one forwarded to the application, without its query. */
    public record Http(String method, String path, String host, HttpHeaders headers) {
    }

    /** The outcome and, for the log, the policy that decided it. */
    public record Decision(boolean allowed, String reason) {
    }

    private final String gatewayTarget;

    /** @param gateway "namespace/name" of this waypoint's Gateway */
    public L7Authorizer(String gateway) {
        this.gatewayTarget = "Gateway/" + gateway;
    }

    /** "Gateway/namespace/name": the target naming this waypoint in policies. */
    public String gatewayTarget() {
        return gatewayTarget;
    }

    public Decision evaluate(List<L7Authorization> policies, Service service, Request r) {
        return evaluate(policies, service, r, false);
    }

    /**
     * The DENY policies alone. A request a route rewrites is judged by {@link #evaluate} as the
     * client sent it (as Istio) and then by this as the application will receive it, so no
     * rewrite leads into what a DENY keeps out.
     */
    public Decision evaluateDenies(List<L7Authorization> policies, Service service, Request r) {
        return evaluate(policies, service, r, true);
    }

    private Decision evaluate(List<L7Authorization> policies, Service service, Request r, boolean deniesOnly) {
        String serviceTarget = service == null ? null : "Service/" + service.getNamespace() + "/" + service.getHostname();
        boolean anyAllow = false;
        String allowedBy = null;
        for (L7Authorization p : policies) {
            if (!applies(p, serviceTarget)) {
                continue;
            }
            if (p.getAction() == Action.CUSTOM) {
                // HTTP: the authorizer was asked before (customPolicy). TCP: no authorizer can judge
                // a byte stream, so what the CUSTOM rules match is denied (fail closed).
                if (r.http() == null && p.getRulesList().stream().anyMatch(rule -> ruleMatches(rule, r, true))) {
                    return new Decision(false, "CUSTOM policy " + p.getNamespace() + "/" + p.getName()
                            + " cannot judge TCP: denied");
                }
                continue;
            }
            boolean deny = p.getAction() == Action.DENY;
            if (deniesOnly && !deny) {
                continue;
            }
            boolean matched = p.getRulesList().stream().anyMatch(rule -> ruleMatches(rule, r, deny));
            if (deny) {
                if (matched) {
                    return new Decision(false, "denied by " + p.getNamespace() + "/" + p.getName());
                }
            } else {
                anyAllow = true;
                if (matched && allowedBy == null) {
                    allowedBy = p.getNamespace() + "/" + p.getName();
                }
            }
        }
        if (!anyAllow) {
            return new Decision(true, "no ALLOW policy applies");
        }
        return allowedBy != null ? new Decision(true, "allowed by " + allowedBy)
                : new Decision(false, "no ALLOW policy matched" + (r.http() == null ? " (as TCP)" : ""));
    }

    /**
     * The CUSTOM policy whose rules match an HTTP request, asked before DENY and ALLOW (as Istio);
     * the first in the policies' order when several do (Istio allows one provider per workload).
     * A rule field the request cannot answer counts as matching: more requests go to the authorizer.
     */
    public Optional<L7Authorization> customPolicy(List<L7Authorization> policies, Service service, Request r) {
        String serviceTarget = service == null ? null : "Service/" + service.getNamespace() + "/" + service.getHostname();
        for (L7Authorization p : policies) {
            if (p.getAction() == Action.CUSTOM && applies(p, serviceTarget)
                    && p.getRulesList().stream().anyMatch(rule -> ruleMatches(rule, r, true))) {
                return Optional.of(p);
            }
        }
        return Optional.empty();
    }

    private boolean applies(L7Authorization p, String serviceTarget) {
        for (String t : p.getTargetsList()) {
            if (t.equals(gatewayTarget) || t.equals(serviceTarget)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Whether a rule holds. An ALLOW rule with a field the request cannot answer never holds; in a
     * DENY rule such fields are taken as holding (ignored), so below they always hold.
     */
    static boolean ruleMatches(L7Rule rule, Request r, boolean deny) {
        if (!deny && !answerable(rule, r)) {
            return false;
        }
        if (rule.getFromCount() > 0 && rule.getFromList().stream().noneMatch(f -> sourceMatches(f, r))) {
            return false;
        }
        if (rule.getToCount() > 0 && rule.getToList().stream().noneMatch(o -> operationMatches(o, r))) {
            return false;
        }
        for (L7Condition c : rule.getWhenList()) {
            if (!conditionHolds(c, r)) {
                return false;
            }
        }
        return true;
    }

    /** Whether every field of the rule can be evaluated for this request. */
    static boolean answerable(L7Rule rule, Request r) {
        for (L7Operation o : rule.getToList()) {
            if (r.http() == null && hasHttpFields(o)) {
                return false;
            }
        }
        for (L7Source f : rule.getFromList()) {
            if (r.http() == null && (f.getRequestPrincipalsCount() > 0 || f.getNotRequestPrincipalsCount() > 0)) {
                return false;
            }
        }
        for (L7Condition c : rule.getWhenList()) {
            ConditionKey key = ConditionKey.of(c.getKey());
            if (key == ConditionKey.UNKNOWN || (key == ConditionKey.HEADER && r.http() == null)
                    || (key.requestAuth() && r.http() == null)
                    || (key.address() && (c.getValuesCount() > 0 || c.getNotValuesCount() > 0))) {
                return false;
            }
        }
        return true;
    }

    private static boolean hasHttpFields(L7Operation o) {
        return o.getMethodsCount() > 0 || o.getNotMethodsCount() > 0 || o.getPathsCount() > 0
                || o.getNotPathsCount() > 0 || o.getHostsCount() > 0 || o.getNotHostsCount() > 0;
    }

    private static boolean sourceMatches(L7Source f, Request r) {
        String principal = r.peer() == null ? null : r.peer().principal();
        String ns = r.peer() == null ? null : r.peer().namespace();
        // A TCP stream has no request principal: only DENY rules get here with one, and it is ignored.
        String requestPrincipal = r.auth() == null ? null : r.auth().principal();
        boolean requestPrincipals = r.http() == null || (in(f.getRequestPrincipalsList(), requestPrincipal, true)
                && !in(f.getNotRequestPrincipalsList(), requestPrincipal, false));
        return requestPrincipals && in(f.getPrincipalsList(), principal, true)
                && !in(f.getNotPrincipalsList(), principal, false)
                && in(f.getNamespacesList(), ns, true) && !in(f.getNotNamespacesList(), ns, false)
                && cidrs(f.getIpBlocksList(), r.sourceIp(), true) && !cidrs(f.getNotIpBlocksList(), r.sourceIp(), false);
    }

    private static boolean operationMatches(L7Operation o, Request r) {
        boolean portsHold = ports(o.getPortsList(), r.port(), true) && !ports(o.getNotPortsList(), r.port(), false);
        Http h = r.http();
        if (h == null) {
            return portsHold; // the HTTP fields are ignored (reached for DENY rules only)
        }
        return portsHold && inPlain(o.getMethodsList(), h.method(), true)
                && !inPlain(o.getNotMethodsList(), h.method(), false)
                && in(o.getPathsList(), h.path(), true) && !in(o.getNotPathsList(), h.path(), false)
                && in(o.getHostsList(), h.host(), true) && !in(o.getNotHostsList(), h.host(), false);
    }

    /** The {@code when} keys this waypoint evaluates; anything else is UNKNOWN. */
    enum ConditionKey {
        HEADER, SOURCE_PRINCIPAL, SOURCE_NAMESPACE, SOURCE_IP, DESTINATION_IP, DESTINATION_PORT,
        REQUEST_PRINCIPAL, REQUEST_AUDIENCES, REQUEST_PRESENTER, REQUEST_CLAIM, UNKNOWN;

        /** Compared as addresses, against CIDR blocks (string values for them are not understood). */
        boolean address() {
            return this == SOURCE_IP || this == DESTINATION_IP;
        }

        /** What a verified JWT says: a TCP stream cannot answer it. */
        boolean requestAuth() {
            return this == REQUEST_PRINCIPAL || this == REQUEST_AUDIENCES || this == REQUEST_PRESENTER
                    || this == REQUEST_CLAIM;
        }

        static ConditionKey of(String key) {
            if (key.startsWith("request.headers[") && key.endsWith("]") && key.length() > "request.headers[]".length()) {
                return HEADER;
            }
            if (key.startsWith("request.auth.claims[")) {
                return RequestAuthKey.claimPath(key) == null ? UNKNOWN : REQUEST_CLAIM;
            }
            return switch (key) {
                case "source.principal" -> SOURCE_PRINCIPAL;
                case "source.namespace" -> SOURCE_NAMESPACE;
                // The waypoint believes no client-sent address header: the remote address is the source.
                case "source.ip", "remote.ip" -> SOURCE_IP;
                case "destination.ip" -> DESTINATION_IP;
                case "destination.port" -> DESTINATION_PORT;
                case "request.auth.principal" -> REQUEST_PRINCIPAL;
                case "request.auth.audiences" -> REQUEST_AUDIENCES;
                case "request.auth.presenter" -> REQUEST_PRESENTER;
                default -> UNKNOWN;
            };
        }
    }

    /** Any of several values (a list claim, the audiences) holds against the condition's values. */
    private static boolean anyHolds(L7Condition c, List<String> values) {
        boolean matched = c.getValuesCount() == 0 || values.stream().anyMatch(v -> in(c.getValuesList(), v, true));
        boolean excluded = values.stream().anyMatch(v -> in(c.getNotValuesList(), v, false));
        return matched && !excluded;
    }

    /** Unknown keys and HTTP keys of a TCP stream hold here: only DENY rules get this far with them. */
    private static boolean conditionHolds(L7Condition c, Request r) {
        String value;
        ConditionKey key = ConditionKey.of(c.getKey());
        if (key.requestAuth() && r.http() == null) {
            return true;
        }
        RequestAuth auth = r.auth() == null ? RequestAuth.NONE : r.auth();
        switch (key) {
            case REQUEST_AUDIENCES -> {
                return anyHolds(c, auth.audiences());
            }
            case REQUEST_CLAIM -> {
                return anyHolds(c, auth.claim(RequestAuthKey.claimPath(c.getKey())));
            }
            case REQUEST_PRINCIPAL -> value = auth.principal();
            case REQUEST_PRESENTER -> value = auth.presenter();
            case SOURCE_IP -> {
                return addressHolds(c, r.sourceIp());
            }
            case DESTINATION_IP -> {
                return addressHolds(c, r.destinationIp());
            }
            case HEADER -> {
                if (r.http() == null) {
                    return true;
                }
                String name = c.getKey().substring("request.headers[".length(), c.getKey().length() - 1);
                List<String> all = r.http().headers().getAll(name);
                // Several fields of one name are one comma-separated value (RFC 9110 5.3), as Envoy matches them.
                value = all.isEmpty() ? null : String.join(",", all);
            }
            case SOURCE_PRINCIPAL -> value = r.peer() == null ? null : r.peer().principal();
            case SOURCE_NAMESPACE -> value = r.peer() == null ? null : r.peer().namespace();
            case DESTINATION_PORT -> value = Integer.toString(r.port());
            case UNKNOWN -> {
                return true;
            }
            default -> throw new IllegalStateException();
        }
        return in(c.getValuesList(), value, true) && !in(c.getNotValuesList(), value, false);
    }

    /** An address condition compares CIDR blocks; with string values it is not understood (ignored: DENY only). */
    private static boolean addressHolds(L7Condition c, InetAddress ip) {
        if (c.getValuesCount() > 0 || c.getNotValuesCount() > 0) {
            return true;
        }
        return cidrs(c.getIpBlocksList(), ip, true) && !cidrs(c.getNotIpBlocksList(), ip, false);
    }

    /** Empty list: {@code whenEmpty}; otherwise whether any match holds. */
    private static boolean in(List<StringMatch> matches, String value, boolean whenEmpty) {
        if (matches.isEmpty()) {
            return whenEmpty;
        }
        for (StringMatch m : matches) {
            if (stringMatches(m, value)) {
                return true;
            }
        }
        return false;
    }

    private static boolean inPlain(List<String> values, String value, boolean whenEmpty) {
        if (values.isEmpty()) {
            return whenEmpty;
        }
        return values.stream().anyMatch(v -> v.equalsIgnoreCase(value));
    }

    private static boolean ports(List<Integer> ports, int port, boolean whenEmpty) {
        return ports.isEmpty() ? whenEmpty : ports.contains(port);
    }

    static boolean stringMatches(StringMatch m, String value) {
        if (value == null) {
            return false;
        }
        return switch (m.getMatchTypeCase()) {
            case EXACT -> value.equals(m.getExact());
            case PREFIX -> value.startsWith(m.getPrefix());
            case SUFFIX -> value.endsWith(m.getSuffix());
            case PRESENCE -> true;
            default -> false;
        };
    }

    private static boolean cidrs(List<Cidr> cidrs, InetAddress ip, boolean whenEmpty) {
        if (cidrs.isEmpty()) {
            return whenEmpty;
        }
        if (ip == null) {
            return false;
        }
        byte[] a = ip.getAddress();
        for (Cidr c : cidrs) {
            byte[] net = c.getAddress().toByteArray();
            if (net.length != a.length) {
                continue;
            }
            int bits = c.getLength();
            boolean ok = true;
            for (int i = 0; i < net.length && bits > 0; i++, bits -= 8) {
                int mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
                if ((net[i] & mask) != (a[i] & mask)) {
                    ok = false;
                    break;
                }
            }
            if (ok) {
                return true;
            }
        }
        return false;
    }
}
