package dev.ambient.xds.security;

import dev.ambient.auth.Caller;
import dev.ambient.proto.discovery.Node;
import java.util.Set;

/**
 * Binds what a client may see to who it is, not to what its {@link Node} claims:
 * <ul>
 * <li>role ZTUNNEL: only a ztunnel service account ({@code xds.auth.ztunnel-service-account}),
 * only as the node its token is bound to (the token's node, or its pod's), and the Node must name
 * that node;</li>
 * <li>role WAYPOINT: only the service account of the Gateway it names, as the waypoint
 * controller runs it (account = Gateway name, in the Gateway's namespace; Istio's convention),
 * and then only that Gateway's configuration;</li>
 * <li>anything else is refused.</li>
 * </ul>
 */
public final class StreamAuthorizer {

    /** Why a stream is refused; the message names the caller and the reason. */
    public static final class Denied extends RuntimeException {
        Denied(String message) {
            super(message, null, false, false);
        }
    }

    private final Set<String> ztunnelAccounts;

    public StreamAuthorizer(Set<String> ztunnelAccounts) {
        this.ztunnelAccounts = Set.copyOf(ztunnelAccounts);
    }

    public boolean isZtunnel(Caller caller) {
        return ztunnelAccounts.contains(caller.serviceAccountRef());
    }

    /**
     * @throws Denied when {@code caller} may not stream as {@code node}
     * @throws IllegalArgumentException when the node is malformed
     */
    public StreamGrant grant(Node node, Caller caller) {
        return switch (node.getRole()) {
            case ZTUNNEL -> ztunnel(node, caller);
            case WAYPOINT -> waypoint(node, caller);
            case UNRECOGNIZED -> throw new Denied(caller + " claims an unknown role");
        };
    }

    private StreamGrant ztunnel(Node node, Caller caller) {
        if (!isZtunnel(caller)) {
            throw new Denied(caller + " may not stream as a ztunnel: only " + String.join(", ", ztunnelAccounts) + " may");
        }
        if (caller.nodeName() == null) {
            throw new Denied(caller + " is a ztunnel of no known node: its token is not bound to a pod on a node "
                    + "(use a projected service-account token)");
        }
        if (!caller.nodeName().equals(node.getNodeName())) {
            throw new Denied(caller + " runs on " + caller.nodeName() + " and may not stream as node \""
                    + node.getNodeName() + "\"");
        }
        return new StreamGrant.Ztunnel(caller, caller.nodeName());
    }

    private static StreamGrant waypoint(Node node, Caller caller) {
        String gw = node.getGateway();
        int slash = gw.indexOf('/');
        if (slash <= 0 || slash == gw.length() - 1 || gw.indexOf('/', slash + 1) >= 0) {
            throw new IllegalArgumentException("a waypoint must name its Gateway as \"namespace/name\", got \"" + gw + "\"");
        }
        String namespace = gw.substring(0, slash);
        String name = gw.substring(slash + 1);
        if (!caller.namespace().equals(namespace) || !caller.serviceAccount().equals(name)) {
            throw new Denied(caller + " may not stream as the waypoint of Gateway " + gw + ": that waypoint runs as "
                    + "service account " + gw);
        }
        return new StreamGrant.Waypoint(caller, namespace, name);
    }
}
