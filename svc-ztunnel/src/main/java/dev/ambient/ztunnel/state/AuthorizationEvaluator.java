package dev.ambient.ztunnel.state;

import dev.ambient.proto.workload.Action;
import dev.ambient.proto.workload.Authorization;
import dev.ambient.proto.workload.Cidr;
import dev.ambient.proto.workload.Clause;
import dev.ambient.proto.workload.Match;
import dev.ambient.proto.workload.Rule;
import dev.ambient.proto.workload.StringMatch;
import dev.ambient.proto.workload.Workload;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * L4 authorization of one inbound connection to a workload, with Istio's semantics.
 *
 * <ol>
 *   <li>If any applicable, enforced DENY policy matches: denied (DENY wins).
 *   <li>Else, if no enforced ALLOW policy applies: allowed.
 *   <li>Else allowed iff some enforced ALLOW policy matches.
 * </ol>
 *
 * A policy matches if ANY of its rules matches (no rules: matches nothing, so an ALLOW policy
 * without rules allows nothing and a DENY policy without rules denies nothing); a rule if EVERY
 * clause matches (no clauses: matches everything); a clause if ANY of its matches holds; a match
 * if every non-empty positive field holds and no non-empty negative field's values match. Without
 * a peer identity (plaintext) positive principal/namespace fields fail and negative ones hold, so
 * {@code DENY notPrincipals: ["*"]} denies plaintext. Dry-run policies never change the decision;
 * when some apply, the reason ends with what the decision would have been with them enforced.
 *
 * <p>Stateless and thread-safe.
 */
public final class AuthorizationEvaluator {

    /**
     * What is known of a connection.
     *
     * @param sourcePrincipal the peer's identity in Istio form {@code "<td>/ns/<ns>/sa/<sa>"}
     *     (a {@code spiffe://} prefix is dropped); empty for plaintext
     * @param sourceNamespace the peer's namespace; derived from the principal when empty
     * @param sourceIp the peer's address
     * @param destinationIp the address the connection was for (the workload's IP)
     * @param destinationPort the port the connection was for (the workload's target port)
     */
    public record Request(Optional<String> sourcePrincipal, Optional<String> sourceNamespace, InetAddress sourceIp,
            InetAddress destinationIp, int destinationPort) {

        public Request {
            sourcePrincipal = Objects.requireNonNullElse(sourcePrincipal, Optional.<String>empty())
                    .map(p -> p.startsWith("spiffe://") ? p.substring("spiffe://".length()) : p)
                    .filter(p -> !p.isEmpty());
            sourceNamespace = Objects.requireNonNullElse(sourceNamespace, Optional.<String>empty())
                    .filter(ns -> !ns.isEmpty());
            if (sourceNamespace.isEmpty() && sourcePrincipal.isPresent()) {
                sourceNamespace = namespaceOf(sourcePrincipal.get());
            }
            Objects.requireNonNull(sourceIp, "sourceIp");
            Objects.requireNonNull(destinationIp, "destinationIp");
        }

        /** A connection from an authenticated peer (HBONE/mTLS). */
        public static Request authenticated(String principal, InetAddress sourceIp, InetAddress destinationIp,
                int destinationPort) {
            return new Request(Optional.of(principal), Optional.empty(), sourceIp, destinationIp, destinationPort);
        }

        /** A plaintext connection: no peer identity. */
        public static Request plaintext(InetAddress sourceIp, InetAddress destinationIp, int destinationPort) {
            return new Request(Optional.empty(), Optional.empty(), sourceIp, destinationIp, destinationPort);
        }
    }

    /** The outcome, with a reason fit for logs and access records. */
    public record Decision(boolean allowed, String reason) {}

    /** The principal of a workload in Istio form {@code "<td>/ns/<ns>/sa/<sa>"}. */
    public static String principalOf(String trustDomain, String namespace, String serviceAccount) {
        return trustDomain + "/ns/" + namespace + "/sa/" + serviceAccount;
    }

    /** The namespace in a principal {@code "<td>/ns/<ns>/sa/<sa>"}, if it has that form. */
    public static Optional<String> namespaceOf(String principal) {
        int ns = principal.indexOf("/ns/");
        if (ns < 0) {
            return Optional.empty();
        }
        int start = ns + "/ns/".length();
        int end = principal.indexOf('/', start);
        String namespace = end < 0 ? principal.substring(start) : principal.substring(start, end);
        return namespace.isEmpty() ? Optional.empty() : Optional.of(namespace);
    }

    /** Decides whether {@code request} may reach {@code destination} under {@code state}'s policies. */
    public Decision evaluate(StateSnapshot state, Workload destination, Request request) {
        Objects.requireNonNull(request, "request");
        List<Authorization> applicable = state.policiesFor(Objects.requireNonNull(destination, "destination"));
        List<Authorization> enforced = applicable;
        boolean anyDryRun = false;
        for (Authorization p : applicable) {
            if (p.getDryRun()) {
                anyDryRun = true;
                break;
            }
        }
        if (!anyDryRun) {
            return decide(applicable, request);
        }
        enforced = new ArrayList<>(applicable.size());
        for (Authorization p : applicable) {
            if (!p.getDryRun()) {
                enforced.add(p);
            }
        }
        Decision real = decide(enforced, request);
        Decision shadow = decide(applicable, request);
        String note = shadow.allowed() == real.allowed() ? "same outcome" : "would be " + (shadow.allowed()
                ? "allowed" : "denied");
        return new Decision(real.allowed(), real.reason() + "; with dry-run policies: " + note + " ("
                + shadow.reason() + ")");
    }

    private static Decision decide(List<Authorization> policies, Request request) {
        int allowPolicies = 0;
        int denyPolicies = 0;
        for (Authorization p : policies) {
            // Any action but ALLOW denies what it matches: CUSTOM needs an authorizer no ztunnel
            // calls (Istio's ztunnel denies too), and an action this build does not know fails closed.
            if (p.getAction() != Action.ALLOW) {
                denyPolicies++;
                if (matches(p, request)) {
                    return new Decision(false, "denied by " + describe(p));
                }
            } else {
                allowPolicies++;
            }
        }
        if (allowPolicies == 0) {
            return new Decision(true, denyPolicies == 0 ? "no policy applies"
                    : "no DENY policy matched (" + denyPolicies + " apply) and no ALLOW policy applies");
        }
        for (Authorization p : policies) {
            if (p.getAction() == Action.ALLOW && matches(p, request)) {
                return new Decision(true, "allowed by " + describe(p));
            }
        }
        return new Decision(false, "no ALLOW policy matched (" + allowPolicies + " apply)");
    }

    private static String describe(Authorization p) {
        return (p.getDryRun() ? "dry-run " : "") + p.getAction().name() + " policy " + p.getNamespace() + "/"
                + p.getName();
    }

    /** Whether ANY rule of the policy matches. */
    static boolean matches(Authorization policy, Request request) {
        for (Rule rule : policy.getRulesList()) {
            if (matches(rule, request)) {
                return true;
            }
        }
        return false;
    }

    /** Whether EVERY clause matches. */
    private static boolean matches(Rule rule, Request request) {
        for (Clause clause : rule.getClausesList()) {
            if (!matches(clause, request)) {
                return false;
            }
        }
        return true;
    }

    /** Whether ANY match holds. */
    private static boolean matches(Clause clause, Request request) {
        for (Match match : clause.getMatchesList()) {
            if (holds(match, request)) {
                return true;
            }
        }
        return false;
    }

    private static boolean holds(Match m, Request r) {
        if (m.getDestinationPortsCount() > 0 && !m.getDestinationPortsList().contains(r.destinationPort())) {
            return false;
        }
        if (m.getNotDestinationPortsList().contains(r.destinationPort())) {
            return false;
        }
        if (m.getSourceIpsCount() > 0 && !anyContains(m.getSourceIpsList(), r.sourceIp())) {
            return false;
        }
        if (anyContains(m.getNotSourceIpsList(), r.sourceIp())) {
            return false;
        }
        if (m.getDestinationIpsCount() > 0 && !anyContains(m.getDestinationIpsList(), r.destinationIp())) {
            return false;
        }
        if (anyContains(m.getNotDestinationIpsList(), r.destinationIp())) {
            return false;
        }
        if (m.getPrincipalsCount() > 0 && !anyMatches(m.getPrincipalsList(), r.sourcePrincipal())) {
            return false;
        }
        if (anyMatches(m.getNotPrincipalsList(), r.sourcePrincipal())) {
            return false;
        }
        if (m.getNamespacesCount() > 0 && !anyMatches(m.getNamespacesList(), r.sourceNamespace())) {
            return false;
        }
        return !anyMatches(m.getNotNamespacesList(), r.sourceNamespace());
    }

    private static boolean anyContains(List<Cidr> cidrs, InetAddress ip) {
        for (Cidr c : cidrs) {
            if (Addresses.contains(c, ip)) {
                return true;
            }
        }
        return false;
    }

    /** An absent value (no peer identity) matches no string match. */
    private static boolean anyMatches(List<StringMatch> matches, Optional<String> value) {
        if (value.isEmpty()) {
            return false;
        }
        String v = value.get();
        for (StringMatch sm : matches) {
            boolean hit = switch (sm.getMatchTypeCase()) {
                case EXACT -> v.equals(sm.getExact());
                case PREFIX -> v.startsWith(sm.getPrefix());
                case SUFFIX -> v.endsWith(sm.getSuffix());
                case PRESENCE -> sm.getPresence();
                case MATCHTYPE_NOT_SET -> false;
            };
            if (hit) {
                return true;
            }
        }
        return false;
    }
}
