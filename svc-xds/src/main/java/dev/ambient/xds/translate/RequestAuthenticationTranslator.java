package dev.ambient.xds.translate;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ambient.proto.l7.ClaimToHeader;
import dev.ambient.proto.l7.JwtHeader;
import dev.ambient.proto.l7.JwtRule;
import dev.ambient.proto.l7.L7Authentication;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.Pod;
import java.net.URI;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * {@code security.istio.io} RequestAuthentication, for waypoints: the JWT rules a waypoint verifies.
 * Ztunnels never see requests, so the policy reaches waypoints only: through {@code targetRefs}
 * (a waypoint Gateway, a Service or ServiceEntry behind one), through a {@code selector} that
 * selects a waypoint's pods (label {@code gateway.networking.k8s.io/gateway-name} or
 * {@code istio.io/gateway-name}), or, with neither, every waypoint Gateway of its namespace (of the
 * mesh in the root namespace).
 *
 * <p>A bad JWT rule is reported and left out: tokens of that issuer are then refused by the
 * waypoint (fail closed). A policy whose structure is wrong is reported and skipped.
 */
final class RequestAuthenticationTranslator {

    private static final Set<String> SPEC_KEYS = Set.of("selector", "targetRef", "targetRefs", "jwtRules");
    private static final Set<String> RULE_KEYS = Set.of("issuer", "audiences", "jwksUri", "jwks", "fromHeaders",
            "fromParams", "outputPayloadToHeader", "outputClaimToHeaders", "forwardOriginalToken", "fromCookies",
            "timeout");
    private static final Set<String> HEADER_KEYS = Set.of("name", "prefix");
    private static final Set<String> CLAIM_KEYS = Set.of("header", "claim");
    private static final Pattern HEADER_NAME = Pattern.compile("[!#$%&'*+.^_`|~0-9A-Za-z-]+");
    /** Headers the waypoint or HTTP itself owns: a policy may not have claims written into them. */
    private static final Set<String> RESERVED_HEADERS = Set.of("host", "content-length", "transfer-encoding",
            "connection", "te", "upgrade", "keep-alive", "proxy-connection", "x-forwarded-client-cert",
            "x-forwarded-for", "forwarded", "baggage", "traceparent", "tracestate");
    /** An inline JWKS larger than this is refused (the waypoint bounds fetched ones alike). */
    static final int MAX_JWKS_BYTES = 64 * 1024;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Context ctx;

    RequestAuthenticationTranslator(Context ctx) {
        this.ctx = ctx;
    }

    L7Authentication translate(GenericKubernetesResource p) {
        Map<String, Object> spec = Specs.spec(p);
        Specs.onlyKeys(spec, "spec", SPEC_KEYS);
        String ns = Specs.namespace(p);
        Set<String> targets;
        if (PolicyTargets.targeted(spec)) {
            if (spec.containsKey("selector")) {
                throw new Specs.Invalid("spec: selector and targetRefs cannot be used together");
            }
            targets = PolicyTargets.resolve(ctx, p, spec);
        } else {
            targets = selectedWaypoints(p, spec.get("selector"), ns);
        }
        L7Authentication.Builder b = L7Authentication.newBuilder().setName(p.getMetadata().getName())
                .setNamespace(ns).addAllTargets(targets);
        List<Map<String, Object>> rules = Specs.maps(spec.get("jwtRules"), "spec.jwtRules");
        Set<String> issuers = new HashSet<>();
        for (int i = 0; i < rules.size(); i++) {
            String at = "spec.jwtRules[" + i + "]";
            try {
                JwtRule r = rule(rules.get(i), at);
                if (!issuers.add(r.getIssuer())) {
                    ctx.problem(p, at + ".issuer: '" + r.getIssuer() + "' appears in more than one rule; the first is used");
                    continue;
                }
                b.addJwtRules(r);
            } catch (Specs.Invalid e) {
                ctx.problem(p, e.getMessage() + "; rule left out (tokens of its issuer are refused)");
            }
        }
        return b.build();
    }

    /** The waypoint Gateways whose pods the selector selects; no selector = every waypoint in scope. */
    private Set<String> selectedWaypoints(GenericKubernetesResource p, Object selectorRaw, String ns) {
        Map<String, String> labels = Map.of();
        if (selectorRaw != null) {
            Map<String, Object> sel = Specs.map(selectorRaw, "spec.selector");
            Specs.onlyKeys(sel, "spec.selector", Set.of("matchLabels"));
            labels = Specs.matchLabels(sel.get("matchLabels"), "spec.selector.matchLabels");
        }
        boolean everywhere = ns.equals(ctx.config.rootNamespace());
        Set<String> targets = new TreeSet<>();
        for (GenericKubernetesResource gw : ctx.gateways.values()) {
            String gwNs = Specs.namespace(gw);
            if (!ctx.isWaypoint(gw) || (!everywhere && !gwNs.equals(ns))) {
                continue;
            }
            String name = gw.getMetadata().getName();
            Map<String, String> podLabels = Map.of(Context.GATEWAY_NAME, name, "istio.io/gateway-name", name);
            if (labels.isEmpty() || Specs.selects(labels, podLabels) || podsSelected(labels, gwNs, name)) {
                targets.add("Gateway/" + gwNs + "/" + name);
            }
        }
        if (targets.isEmpty()) {
            if (labels.isEmpty()) {
                ctx.problem(p, "spec: no waypoint in scope yet; only waypoints enforce RequestAuthentication");
            } else {
                ctx.problem(p, "spec.selector: selects no waypoint; only waypoints enforce RequestAuthentication"
                        + " (use targetRefs)");
            }
        }
        return targets;
    }

    private boolean podsSelected(Map<String, String> selector, String ns, String gateway) {
        for (Pod pod : ctx.input.pods()) {
            Map<String, String> l = Specs.labels(pod);
            if (Specs.namespace(pod).equals(ns) && gateway.equals(l.get(Context.GATEWAY_NAME))
                    && Specs.selects(selector, l)) {
                return true;
            }
        }
        return false;
    }

    private static JwtRule rule(Map<String, Object> r, String at) {
        Specs.onlyKeys(r, at, RULE_KEYS);
        for (String unsupported : List.of("fromCookies", "timeout")) {
            if (r.get(unsupported) != null) {
                throw new Specs.Invalid(at + "." + unsupported + ": not supported");
            }
        }
        JwtRule.Builder b = JwtRule.newBuilder();
        String issuer = Specs.string(r.get("issuer"), at + ".issuer");
        if (issuer == null || issuer.isEmpty()) {
            throw new Specs.Invalid(at + ".issuer: required");
        }
        b.setIssuer(issuer);
        for (String aud : Specs.strings(r.get("audiences"), at + ".audiences")) {
            if (aud.isEmpty()) {
                throw new Specs.Invalid(at + ".audiences: must not hold an empty string");
            }
            b.addAudiences(aud);
        }
        String uri = Specs.string(r.get("jwksUri"), at + ".jwksUri");
        String jwks = Specs.string(r.get("jwks"), at + ".jwks");
        boolean hasUri = uri != null && !uri.isEmpty();
        boolean hasJwks = jwks != null && !jwks.isEmpty();
        if (hasUri == hasJwks) {
            throw new Specs.Invalid(at + ": exactly one of jwksUri and jwks is required"
                    + (hasUri ? "" : " (OpenID discovery from the issuer is not supported)"));
        }
        if (hasUri) {
            b.setJwksUri(jwksUri(uri, at + ".jwksUri"));
        } else {
            checkJwks(jwks, at + ".jwks");
            b.setJwks(jwks);
        }
        List<Map<String, Object>> headers = Specs.maps(r.get("fromHeaders"), at + ".fromHeaders");
        for (int j = 0; j < headers.size(); j++) {
            String hat = at + ".fromHeaders[" + j + "]";
            Specs.onlyKeys(headers.get(j), hat, HEADER_KEYS);
            String name = headerName(Specs.string(headers.get(j).get("name"), hat + ".name"), hat + ".name", false);
            String prefix = Specs.string(headers.get(j).get("prefix"), hat + ".prefix");
            b.addFromHeaders(JwtHeader.newBuilder().setName(name).setPrefix(prefix == null ? "" : prefix));
        }
        for (String param : Specs.strings(r.get("fromParams"), at + ".fromParams")) {
            if (param.isEmpty()) {
                throw new Specs.Invalid(at + ".fromParams: must not hold an empty name");
            }
            b.addFromParams(param);
        }
        String payload = Specs.string(r.get("outputPayloadToHeader"), at + ".outputPayloadToHeader");
        if (payload != null && !payload.isEmpty()) {
            b.setOutputPayloadToHeader(headerName(payload, at + ".outputPayloadToHeader", true));
        }
        List<Map<String, Object>> claims = Specs.maps(r.get("outputClaimToHeaders"), at + ".outputClaimToHeaders");
        for (int j = 0; j < claims.size(); j++) {
            String cat = at + ".outputClaimToHeaders[" + j + "]";
            Specs.onlyKeys(claims.get(j), cat, CLAIM_KEYS);
            String header = headerName(Specs.string(claims.get(j).get("header"), cat + ".header"), cat + ".header", true);
            String claim = Specs.string(claims.get(j).get("claim"), cat + ".claim");
            if (claim == null || claim.isEmpty()) {
                throw new Specs.Invalid(cat + ".claim: required");
            }
            b.addOutputClaimToHeaders(ClaimToHeader.newBuilder().setHeader(header).setClaim(claim));
        }
        Object forward = r.get("forwardOriginalToken");
        if (forward != null && !(forward instanceof Boolean)) {
            throw new Specs.Invalid(at + ".forwardOriginalToken: expected true or false, got '" + forward + "'");
        }
        b.setForwardOriginalToken(Boolean.TRUE.equals(forward));
        return b.build();
    }

    /** A header name, lower-cased; one the waypoint writes is refused as an output header. */
    private static String headerName(String name, String at, boolean output) {
        if (name == null || name.isEmpty()) {
            throw new Specs.Invalid(at + ": required");
        }
        if (!HEADER_NAME.matcher(name).matches()) {
            throw new Specs.Invalid(at + ": '" + name + "' is not a valid header name");
        }
        String lower = name.toLowerCase(Locale.ROOT);
        if (output && (RESERVED_HEADERS.contains(lower) || lower.startsWith("x-envoy-"))) {
            throw new Specs.Invalid(at + ": '" + name + "' is a header the waypoint owns");
        }
        return lower;
    }

    private static String jwksUri(String uri, String at) {
        URI u;
        try {
            u = new URI(uri);
        } catch (Exception e) {
            throw new Specs.Invalid(at + ": not a URI: '" + uri + "'");
        }
        String scheme = u.getScheme() == null ? "" : u.getScheme().toLowerCase(Locale.ROOT);
        if (!(scheme.equals("http") || scheme.equals("https")) || u.getHost() == null || u.getUserInfo() != null) {
            throw new Specs.Invalid(at + ": expected an http or https URL with a host: '" + uri + "'");
        }
        return uri;
    }

    /** Inline keys are checked here so a typo is reported where it was written, not at each waypoint. */
    private static void checkJwks(String jwks, String at) {
        if (jwks.length() > MAX_JWKS_BYTES) {
            throw new Specs.Invalid(at + ": larger than " + MAX_JWKS_BYTES + " bytes");
        }
        JsonNode n;
        try {
            n = JSON.readTree(jwks);
        } catch (Exception e) {
            throw new Specs.Invalid(at + ": not JSON: " + e.getMessage().lines().findFirst().orElse(""));
        }
        if (n == null || !n.path("keys").isArray() || n.path("keys").isEmpty()) {
            throw new Specs.Invalid(at + ": expected a JSON Web Key Set ({\"keys\": [...]}) with at least one key");
        }
    }
}
