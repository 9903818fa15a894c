package dev.ambient.identity;

import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * What a verified CSR asks to be named: a workload's SPIFFE id, or the DNS names of a control-plane
 * server (svc-xds's Service names). A CSR is one or the other, never both: a server certificate
 * can never be used as a workload identity in HBONE, nor a workload certificate as a server.
 */
public sealed interface CertificateSubject {

    /** One URI SAN holding a workload SPIFFE id. */
    record Workload(SpiffeId identity) implements CertificateSubject {
        @Override
        public String toString() {
            return identity.toString();
        }
    }

    /** DNS SANs only, lowercase, no wildcards, at most {@value #MAX_NAMES}. */
    record ServerNames(List<String> dnsNames) implements CertificateSubject {

        public static final int MAX_NAMES = 16;
        private static final Pattern LABEL = Pattern.compile("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?");

        public ServerNames {
            dnsNames = List.copyOf(dnsNames);
            if (dnsNames.isEmpty() || dnsNames.size() > MAX_NAMES) {
                throw new IllegalArgumentException("a server certificate names 1 to " + MAX_NAMES
                        + " DNS names, not " + dnsNames.size());
            }
            dnsNames.forEach(ServerNames::check);
        }

        /** A host name as a client dials it: lowercase labels of letters, digits and inner hyphens. */
        public static void check(String name) {
            if (name == null || name.isEmpty() || name.length() > 253) {
                throw new IllegalArgumentException("DNS name \"" + name + "\" is empty or longer than 253 characters");
            }
            if (!name.equals(name.toLowerCase(Locale.ROOT))) {
                throw new IllegalArgumentException("DNS name \"" + name + "\" must be lowercase");
            }
            for (String label : name.split("\\.", -1)) {
                if (!LABEL.matcher(label).matches()) {
                    throw new IllegalArgumentException("DNS name \"" + name
                            + "\" is not a host name (no wildcards, empty labels or other characters)");
                }
            }
        }

        @Override
        public String toString() {
            return "DNS " + String.join(",", dnsNames);
        }
    }
}
