package dev.ambient.waypoint.authz;

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
import io.netty.handler.codec.http.HttpHeaders;
import java.net.InetAddress;
import java.util.List;

/**
 * L7 AuthorizationPolicy as Istio's waypoint enforces it: the policies attached to this waypoint's
 * Gateway or to the destination Service apply; any DENY policy with a matching rule denies; then,
 * if any ALLOW policy applies, one of its rules must match; otherwise the request is allowed.
 */
public final class L7Authorizer {

    /** What a policy is matched against. */
    public record Request(SpiffeId peer, InetAddress sourceIp, String method, String path, String host, int port,
            HttpHeaders headers) {
    }

    /** The outcome and, for the log, the policy that decided it. */
    public record Decision(boolean allowed, String reason) {
    }

    private final String gatewayTarget;

    /** @param gateway "namespace/name" of this waypoint's Gateway */
    public L7Authorizer(String gateway) {
        this.gatewayTarget = "Gateway/" + gateway;
    }

    public Decision evaluate(List<L7Authorization> policies, Service service, Request r) {
        String serviceTarget = service == null ? null : "Service/" + service.getNamespace() + "/" + service.getHostname();
        boolean anyAllow = false;
        String allowedBy = null;
        for (L7Authorization p : policies) {
            if (!applies(p, serviceTarget)) {
                continue;
            }
            boolean matched = p.getRulesList().stream().anyMatch(rule -> ruleMatches(rule, r));
            if (p.getAction() == Action.DENY) {
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
                : new Decision(false, "no ALLOW policy matched");
    }

    private boolean applies(L7Authorization p, String serviceTarget) {
        for (String t : p.getTargetsList()) {
            if (t.equals(gatewayTarget) || t.equals(serviceTarget)) {
                return true;
            }
        }
        return false;
    }

    static boolean ruleMatches(L7Rule rule, Request r) {
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

    private static boolean sourceMatches(L7Source f, Request r) {
        String principal = r.peer() == null ? null : r.peer().principal();
        String ns = r.peer() == null ? null : r.peer().namespace();
        return in(f.getPrincipalsList(), principal, true) && !in(f.getNotPrincipalsList(), principal, false)
                && in(f.getNamespacesList(), ns, true) && !in(f.getNotNamespacesList(), ns, false)
                && cidrs(f.getIpBlocksList(), r.sourceIp(), true) && !cidrs(f.getNotIpBlocksList(), r.sourceIp(), false);
    }

    private static boolean operationMatches(L7Operation o, Request r) {
        return inPlain(o.getMethodsList(), r.method(), true) && !inPlain(o.getNotMethodsList(), r.method(), false)
                && in(o.getPathsList(), r.path(), true) && !in(o.getNotPathsList(), r.path(), false)
                && ports(o.getPortsList(), r.port(), true) && !ports(o.getNotPortsList(), r.port(), false)
                && in(o.getHostsList(), r.host(), true) && !in(o.getNotHostsList(), r.host(), false);
    }

    private static boolean conditionHolds(L7Condition c, Request r) {
        String value = conditionValue(c.getKey(), r);
        return in(c.getValuesList(), value, true) && !in(c.getNotValuesList(), value, false);
    }

    /** The request attribute a when-condition names; null when absent or unknown (then only not_values can hold). */
    private static String conditionValue(String key, Request r) {
        if (key.startsWith("request.headers[") && key.endsWith("]")) {
            return r.headers().get(key.substring("request.headers[".length(), key.length() - 1));
        }
        return switch (key) {
            case "source.principal" -> r.peer() == null ? null : r.peer().principal();
            case "source.namespace" -> r.peer() == null ? null : r.peer().namespace();
            case "source.ip" -> r.sourceIp() == null ? null : r.sourceIp().getHostAddress();
            case "destination.port" -> Integer.toString(r.port());
            default -> null;
        };
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
