package dev.ambient.cni.redirect;

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
 * namespace, TCP that a local process (the kubelet) sends to an enrolled pod leaves SNATed to the
 * link-local probe source (169.254.7.127), which the pod's rules let through to the application.
 * {@code -m owner --socket-exists} matches only packets of local sockets, so traffic the node
 * merely forwards (pod to pod) keeps its source and is captured as usual. One rule per pod IP in
 * our own chain {@code AMBIENT_POSTROUTING}; each change is one iptables-restore.
 */
public final class HostProbeSnat {

    private static final Logger LOG = Logger.getLogger(HostProbeSnat.class);
    public static final String CHAIN = "AMBIENT_POSTROUTING";
    private static final String JUMP = "-A POSTROUTING -j " + CHAIN;

    private final Path hostNetns;
    private final String probeSource;
    private final NetnsCommand command;

    /** @param hostNetns the node's network namespace (the agent runs on the host network: its own) */
    public HostProbeSnat(Path hostNetns, String probeSource, NetnsCommand command) {
        this.hostNetns = hostNetns;
        this.probeSource = probeSource;
        this.command = command;
    }

    private String rule(String ip) {
        return "-A " + CHAIN + " -d " + ip + "/32 -p tcp -m owner --socket-exists -j SNAT --to-source " + probeSource;
    }

    private InPodRedirection.Saved save() throws IOException {
        return InPodRedirection.Saved.parse(command.run(hostNetns, null, "iptables-save"));
    }

    /** Probes from this node to these pod IPs arrive from the probe source; idempotent. */
    public void add(List<String> podIps) throws IOException {
        List<String> v4 = podIps.stream().filter(ip -> ip.indexOf(':') < 0).toList();
        if (v4.isEmpty()) {
            return;
        }
        InPodRedirection.Saved now = save();
        StringBuilder b = new StringBuilder("*nat\n");
        if (!now.hasChain(CHAIN)) {
            b.append(':').append(CHAIN).append(" - [0:0]\n");
        }
        if (now.count(JUMP) == 0) {
            b.append(JUMP).append('\n');
        }
        int added = 0;
        for (String ip : v4) {
            if (now.count(rule(ip)) == 0) {
                b.append(rule(ip)).append('\n');
                added++;
            }
        }
        if (added == 0 && now.count(JUMP) > 0) {
            return;
        }
        command.run(hostNetns, b.append("COMMIT\n").toString(), "iptables-restore", "-w", "--noflush");
        LOG.debugf("probe SNAT for %s in %s", v4, hostNetns);
    }

    /** Removes the pods' rules (and our chain when it is empty). */
    public void remove(List<String> podIps) throws IOException {
        Set<String> gone = podIps.stream().map(this::rule).collect(Collectors.toSet());
        deleteWhere(gone::contains);
    }

    /**
     * After an agent restart: the rules of pods that left while no agent ran are stale (their IP
     * may already belong to a pod outside the mesh), and a rule written twice is one too many.
     * Keeps exactly one rule per IP in {@code podIps}, deletes every other rule of our chain.
     */
    public void retainOnly(Collection<String> podIps) throws IOException {
        Set<String> wanted = podIps.stream().map(this::rule).collect(Collectors.toSet());
        Set<String> seen = new HashSet<>();
        deleteWhere(line -> !wanted.contains(line) || !seen.add(line));
    }

    /** Deletes the rules of our chain that {@code doomed} names, and the chain once nothing is left. */
    private void deleteWhere(Predicate<String> doomed) throws IOException {
        InPodRedirection.Saved now = save();
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
            command.run(hostNetns, "*nat\n" + b + "COMMIT\n", "iptables-restore", "-w", "--noflush");
        }
    }
}
