package dev.ambient.ztunnel.dns;

import dev.ambient.proto.workload.NetworkAddress;
import dev.ambient.proto.workload.Service;
import dev.ambient.ztunnel.state.StateSnapshot;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The names this ztunnel answers itself, from one state snapshot: every service with addresses
 * (Kubernetes Services by {@code name.ns.svc.<domain>}, ServiceEntry hosts with their written or
 * auto-allocated addresses), as seen from a client's namespace (ServiceEntry exportTo). As Istio's
 * name table: a Kubernetes service also answers to {@code name.ns.svc} and {@code name.ns}, and to
 * {@code name} for clients of its own namespace. A known name with a client's search suffix
 * appended ({@code api.example.com.default.svc.cluster.local}) cannot exist: it is answered
 * NXDOMAIN at once, so a resolver walking its search path reaches the real name even while the
 * upstream is down. Immutable; built once per snapshot.
 */
public final class DnsNames {

    /** What to do with a query name. */
    public sealed interface Lookup {
        /** Answer with these addresses (4 or 16 bytes each; maybe none of the asked family). */
        record Known(Service service, List<byte[]> addresses) implements Lookup {
        }

        /** A search-path expansion of a known name: NXDOMAIN. */
        record NoSuchName(String expandedFrom) implements Lookup {
        }

        /** Not ours: forward it. */
        record Unknown() implements Lookup {
        }

        Lookup UNKNOWN = new Unknown();
    }

    private final String clusterDomain;
    /** Lower-case host (and alias) -> services answering to it, in input order. */
    private final Map<String, List<Service>> byName;

    private DnsNames(String clusterDomain, Map<String, List<Service>> byName) {
        this.clusterDomain = clusterDomain;
        this.byName = byName;
    }

    public static DnsNames of(StateSnapshot state, String clusterDomain) {
        Map<String, List<Service>> byName = new HashMap<>();
        for (Service s : state.services()) {
            if (s.getAddressesCount() == 0 || s.getHostname().isEmpty() || s.getHostname().startsWith("*")) {
                continue; // headless, resolution NONE without addresses, wildcards: the upstream knows
            }
            byName.computeIfAbsent(s.getHostname().toLowerCase(Locale.ROOT), k -> new ArrayList<>()).add(s);
        }
        return new DnsNames(clusterDomain, byName);
    }

    /**
     * @param name the query name, any case, without the final dot
     * @param clientNamespace the querying workload's namespace; null when unknown (it sees only
     *        services exported to every namespace)
     */
    public Lookup lookup(String name, String clientNamespace) {
        String q = name.toLowerCase(Locale.ROOT);
        Service s = resolve(q, clientNamespace);
        if (s != null) {
            return new Lookup.Known(s, addresses(s));
        }
        if (clientNamespace != null) {
            for (String suffix : List.of("." + clientNamespace + ".svc." + clusterDomain, ".svc." + clusterDomain,
                    "." + clusterDomain)) {
                if (q.endsWith(suffix) && q.length() > suffix.length()) {
                    String stripped = q.substring(0, q.length() - suffix.length());
                    if (resolve(stripped, clientNamespace) != null) {
                        return new Lookup.NoSuchName(stripped);
                    }
                }
            }
        }
        return Lookup.UNKNOWN;
    }

    /** The host itself, else the Kubernetes short forms ({@code name.ns.svc}, {@code name.ns}, {@code name}). */
    private Service resolve(String q, String clientNamespace) {
        Service exact = visible(byName.get(q), clientNamespace);
        if (exact != null) {
            return exact;
        }
        String full;
        if (q.endsWith(".svc")) {
            full = q + "." + clusterDomain;
        } else if (q.indexOf('.') < 0) {
            if (clientNamespace == null) {
                return null;
            }
            full = q + "." + clientNamespace + ".svc." + clusterDomain;
        } else if (q.indexOf('.') == q.lastIndexOf('.')) {
            full = q + ".svc." + clusterDomain;
        } else {
            return null;
        }
        return visible(byName.get(full), clientNamespace);
    }

    /** The one the client's namespace sees, its own namespace's first. */
    private static Service visible(List<Service> candidates, String clientNamespace) {
        if (candidates == null) {
            return null;
        }
        Service first = null;
        for (Service s : candidates) {
            if (!visibleTo(s, clientNamespace)) {
                continue;
            }
            if (s.getNamespace().equals(clientNamespace)) {
                return s;
            }
            if (first == null) {
                first = s;
            }
        }
        return first;
    }

    /** ServiceEntry exportTo: an empty list is every namespace. */
    public static boolean visibleTo(Service s, String namespace) {
        return s.getExportToCount() == 0 || (namespace != null && s.getExportToList().contains(namespace));
    }

    private static List<byte[]> addresses(Service s) {
        List<byte[]> out = new ArrayList<>(s.getAddressesCount());
        for (NetworkAddress a : s.getAddressesList()) {
            out.add(a.getAddress().toByteArray());
        }
        return out;
    }
}
