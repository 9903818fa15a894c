package dev.ambient.cni.redirect;

import dev.ambient.cni.redirect.InPodRedirection.Family;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import org.jboss.logging.Logger;

/**
 * The node's half of the kubelet-probe exemption, as Istio does it: in the node's network
 * namespace, TCP that a local process (the kubelet) sends to an enrolled pod leaves SNATed to a
 * probe source (169.254.7.127 for the pod's IPv4 addresses, Istio's
 * fd16:9254:7127:1337:ffff:ffff:ffff:ffff for its IPv6 ones), which the pod's rules let through to
 * the application. {@code -m owner --socket-exists} matches only packets of local sockets, so
 * traffic the node merely forwards (pod to pod) keeps its source and is captured as usual. One rule
 * per pod IP in our own chain {@code AMBIENT_POSTROUTING} of the family's nat table (iptables or
 * ip6tables); each change is one restore per family, and a family is touched only for pods that
 * have an address of it (a node without IPv6 never runs ip6tables for IPv4-only pods).
 */
public final class HostProbeSnat {

    private static final Logger LOG = Logger.getLogger(HostProbeSnat.class);
    public static final String CHAIN = "AMBIENT_POSTROUTING";
    private static final String JUMP = "-A POSTROUTING -j " + CHAIN;
    private static final List<Family> FAMILIES = List.of(Family.IPV4, Family.IPV6);

    private final Path hostNetns;
    private final String probeSource;
    private final String probeSourceIpv6;
    private final NetnsCommand command;

    /**
     * @param hostNetns the node's network namespace (the agent runs on the host network: its own)
     * @param probeSourceIpv6 in ip6tables-save's form ({@link RedirectSettings} keeps it so)
     */
    public HostProbeSnat(Path hostNetns, String probeSource, String probeSourceIpv6, NetnsCommand command) {
        this.hostNetns = hostNetns;
        this.probeSource = probeSource;
        this.probeSourceIpv6 = probeSourceIpv6;
        this.command = command;
    }

    private static Family family(String ip) {
        return ip.indexOf(':') < 0 ? Family.IPV4 : Family.IPV6;
    }

    private static List<String> of(Family family, Collection<String> ips) {
        return ips.stream().filter(ip -> family(ip) == family).toList();
    }

    /** The rule as the family's save tool prints it (IPv6 compressed, so it compares as text). */
    private String rule(String ip) {
        String prefix = family(ip) == Family.IPV4 ? ip + "/32" : RedirectSettings.ipv6(ip, "pod IP") + "/128";
        String source = family(ip) == Family.IPV4 ? probeSource : probeSourceIpv6;
        return "-A " + CHAIN + " -d " + prefix + " -p tcp -m owner --socket-exists -j SNAT --to-source " + source;
    }

    private InPodRedirection.Saved save(Family family) throws IOException {
        return InPodRedirection.Saved.parse(command.run(hostNetns, null, family.save()));
    }

    /** Probes from this node to these pod IPs (either family) arrive from the probe source; idempotent. */
    public void add(List<String> podIps) throws IOException {
        for (Family family : FAMILIES) {
            List<String> ips = of(family, podIps);
            if (!ips.isEmpty()) {
                add(family, ips);
            }
        }
    }

    private void add(Family family, List<String> ips) throws IOException {
        InPodRedirection.Saved now = save(family);
        StringBuilder b = new StringBuilder("*nat\n");
        if (!now.hasChain(CHAIN)) {
            b.append(':').append(CHAIN).append(" - [0:0]\n");
        }
        if (now.count(JUMP) == 0) {
            b.append(JUMP).append('\n');
        }
        int added = 0;
        for (String ip : ips) {
            if (now.count(rule(ip)) == 0) {
                b.append(rule(ip)).append('\n');
                added++;
            }
        }
        if (added == 0 && now.count(JUMP) > 0) {
            return;
        }
        command.run(hostNetns, b.append("COMMIT\n").toString(), family.restore(), "-w", "--noflush");
        LOG.debugf("probe SNAT for %s in %s", ips, hostNetns);
    }

    /** Removes the pods' rules (and our chain when it is empty), in the tables of their IPs' families. */
    public void remove(List<String> podIps) throws IOException {
        Set<String> gone = podIps.stream().map(this::rule).collect(Collectors.toSet());
        for (Family family : FAMILIES) {
            if (!of(family, podIps).isEmpty()) {
                deleteWhere(family, save(family), gone::contains);
            }
        }
    }

    /**
     * After an agent restart: the rules of pods that left while no agent ran are stale (their IP
     * may already belong to a pod outside the mesh), and a rule written twice is one too many.
     * Keeps exactly one rule per IP in {@code podIps}, deletes every other rule of our chain, in both
     * families' tables (a node without a working ip6tables has no IPv6 rules to sweep, unless it is
     * asked to keep some).
     */
    public void retainOnly(Collection<String> podIps) throws IOException {
        Set<String> wanted = podIps.stream().map(this::rule).collect(Collectors.toSet());
        Set<String> seen = new HashSet<>();
        for (Family family : FAMILIES) {
            InPodRedirection.Saved now;
            try {
                now = save(family);
            } catch (IOException e) {
                if (family == Family.IPV4 || !of(family, podIps).isEmpty()) {
                    throw e;
                }
                LOG.debugf("no IPv6 probe SNAT to sweep: %s", e.getMessage());
                continue;
            }
            deleteWhere(family, now, line -> !wanted.contains(line) || !seen.add(line));
        }
    }

    /** Deletes the rules of our chain that {@code doomed} names, and the chain once nothing is left. */
    private void deleteWhere(Family family, InPodRedirection.Saved now, Predicate<String> doomed) throws IOException {
        StringBuilder b = new StringBuilder();
        long left = 0;
        for (String line : now.nat()) {
            if (!line.startsWith("-A " + CHAIN + " ")) {
                continue;
            }
            if (doomed.test(line)) {
                b.append(line.replaceFirst("^-A ", "-D ")).append('\n');
                LOG.debugf("probe SNAT: deleting %s", line);
            } else {
                left++;
            }
        }
        if (left == 0 && now.hasChain(CHAIN)) {
            for (long i = now.count(JUMP); i > 0; i--) {
                b.append("-D POSTROUTING -j ").append(CHAIN).append('\n');
            }
            b.append("-F ").append(CHAIN).append("\n-X ").append(CHAIN).append('\n');
        }
        if (!b.isEmpty()) {
            command.run(hostNetns, "*nat\n" + b + "COMMIT\n", family.restore(), "-w", "--noflush");
        }
    }
}
