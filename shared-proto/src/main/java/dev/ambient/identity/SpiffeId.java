package dev.ambient.identity;

import java.security.cert.X509Certificate;
import java.util.List;

/**
 * A workload identity, {@code spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>}.
 *
 * <p>Parsing is strict: only the Kubernetes form is accepted (no other paths, no query, fragment,
 * port, user info or percent-encoding), so that two different strings never name the same
 * identity and authorization can compare ids as plain values.
 */
public record SpiffeId(String trustDomain, String namespace, String serviceAccount) {

    private static final String SCHEME = "spiffe://";
    // SPIFFE spec: trust domains are lower case; path segments use the unreserved URI characters.
    // Checked with loops, not regexes: the waypoint makes ids on every request.

    public SpiffeId {
        checkTrustDomain(trustDomain);
        checkSegment("namespace", namespace);
        checkSegment("service account", serviceAccount);
    }

    /** Parses {@code spiffe://td/ns/x/sa/y}; anything else is an {@link IllegalArgumentException}. */
    public static SpiffeId parse(String uri) {
        if (uri == null) {
            throw new IllegalArgumentException("SPIFFE id is null");
        }
        if (!uri.startsWith(SCHEME)) {
            throw invalid(uri, "must start with \"spiffe://\"");
        }
        String rest = uri.substring(SCHEME.length());
        int slash = rest.indexOf('/');
        if (slash < 0) {
            throw invalid(uri, "has no path; expected /ns/<namespace>/sa/<service-account>");
        }
        // limit -1 keeps empty trailing segments, so "…/sa/y/" is rejected too
        String[] path = rest.substring(slash + 1).split("/", -1);
        if (path.length != 4 || !path[0].equals("ns") || !path[2].equals("sa")) {
            throw invalid(uri, "path must be exactly /ns/<namespace>/sa/<service-account>");
        }
        try {
            return new SpiffeId(rest.substring(0, slash), path[1], path[3]);
        } catch (IllegalArgumentException e) {
            throw invalid(uri, e.getMessage());
        }
    }

    /**
     * The identity of an X.509-SVID: its single URI SAN (other SAN types are ignored, as the
     * SPIFFE spec allows).
     */
    public static SpiffeId fromCertificate(X509Certificate cert) {
        List<String> uris = X509.uriSans(cert);
        if (uris.size() != 1) {
            throw new IllegalArgumentException("certificate " + cert.getSubjectX500Principal()
                    + " has " + uris.size() + " URI SANs, expected exactly one SPIFFE id");
        }
        return parse(uris.getFirst());
    }

    /** {@code spiffe://td/ns/x/sa/y} */
    public String uri() {
        return SCHEME + principal();
    }

    /** Istio's principal form, as used in authorization policies: {@code td/ns/x/sa/y}. */
    public String principal() {
        return trustDomain + "/ns/" + namespace + "/sa/" + serviceAccount;
    }

    @Override
    public String toString() {
        return uri();
    }

    static void checkTrustDomain(String trustDomain) {
        if (trustDomain == null || trustDomain.isEmpty()) {
            throw new IllegalArgumentException("trust domain is empty");
        }
        if (!allOf(trustDomain, false)) {
            throw new IllegalArgumentException("trust domain \"" + trustDomain
                    + "\" may hold only lower-case letters, digits, '.', '-' and '_'");
        }
    }

    private static void checkSegment(String what, String value) {
        if (value == null || value.isEmpty()) {
            throw new IllegalArgumentException(what + " is empty");
        }
        if (!allOf(value, true) || value.equals(".") || value.equals("..")) {
            throw new IllegalArgumentException(what + " \"" + value
                    + "\" may hold only letters, digits, '.', '-' and '_' (and is not . or ..)");
        }
    }

    /** Only ASCII letters (lower case unless {@code upper}), digits, '.', '-' and '_'. */
    private static boolean allOf(String value, boolean upper) {
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            boolean ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'
                    || (upper && c >= 'A' && c <= 'Z');
            if (!ok) {
                return false;
            }
        }
        return true;
    }

    private static IllegalArgumentException invalid(String uri, String why) {
        return new IllegalArgumentException("invalid SPIFFE id \"" + uri + "\": " + why);
    }
}
