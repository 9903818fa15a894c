package dev.ambient.cni.redirect;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jboss.logging.Logger;

/**
 * The redirection rules inside one pod's network namespace (Istio's in-pod semantics, our own
 * chain names), installed and removed each with one {@code iptables-restore --noflush}, so a pod
 * never sees half of them ({@code -w}: wait for the xtables lock on legacy backends). Only the nat table is used: REDIRECT keeps the original destination
 * for {@code SO_ORIGINAL_DST} and the client's source address as it was.
 *
 * <ul>
 *   <li>outbound: TCP leaving the pod, not over loopback and not marked by the ztunnel, goes to
 *       the outbound capture port (the ztunnel's listener in the pod, on 127.0.0.1);</li>
 *   <li>DNS: UDP and TCP to port 53 leaving the pod, not over loopback and not marked by the
 *       ztunnel, go to the DNS port (the ztunnel's DNS proxy in the pod, on 127.0.0.1; its answers
 *       leave from there, so conntrack gives them the resolver's address back);</li>
 *   <li>inbound: TCP arriving for any port but HBONE goes to the inbound plaintext port (on the
 *       pod's own address, as REDIRECT in PREROUTING picks the receiving interface's address);
 *       HBONE reaches the ztunnel's 15008 listener in the pod untouched;</li>
 *   <li>kubelet probes: the host SNATs its probes to a link-local source (169.254.7.127, as Istio
 *       does); that source is exempt, so probes reach the application directly and a pod is not
 *       reported unhealthy because the mesh refused plaintext.</li>
 * </ul>
 *
 * <p>Removal deletes exactly what was added. If the nat table did not exist before (a fresh pod on
 * the nf_tables backend), a marker rule says so and removal deletes the table too, so
 * {@code iptables-save} afterwards is what it was before.
 *
 * <p>Beside the rules, {@code net.ipv4.tcp_migrate_req=1} in the pod's namespace: when an old
 * ztunnel closes its listeners in a hand-over, the connections still queued on them move to the new
 * instance's listener on the same port (SO_REUSEPORT) instead of being reset. It is left set on
 * removal (harmless without a reuseport group; the namespace goes with the pod).
 */
public final class InPodRedirection {

    private static final Logger LOG = Logger.getLogger(InPodRedirection.class);

    public static final String INBOUND_CHAIN = "AMBIENT_PREROUTING";
    public static final String OUTBOUND_CHAIN = "AMBIENT_OUTPUT";
    static final String JUMP_IN = "-A PREROUTING -j " + INBOUND_CHAIN;
    static final String JUMP_OUT = "-A OUTPUT -j " + OUTBOUND_CHAIN;
    static final String CREATED_MARKER = "ambient-mesh created the nat table";

    private final RedirectSettings settings;
    private final NetnsCommand command;

    public InPodRedirection(RedirectSettings settings, NetnsCommand command) {
        this.settings = settings;
        this.command = command;
    }

    /** What {@code iptables-save} shows of one namespace, table by table. */
    public record Saved(Map<String, List<String>> tables) {

        public static Saved parse(String text) {
            Map<String, List<String>> tables = new LinkedHashMap<>();
            List<String> current = null;
            for (String raw : text.split("\n")) {
                String line = raw.strip();
                if (line.isEmpty() || line.startsWith("#")) {
                    continue;
                }
                if (line.startsWith("*")) {
                    current = new ArrayList<>();
                    tables.put(line.substring(1), current);
                } else if (line.equals("COMMIT")) {
                    current = null;
                } else if (current != null) {
                    current.add(line);
                }
            }
            return new Saved(tables);
        }

        List<String> nat() {
            return tables.getOrDefault("nat", List.of());
        }

        boolean hasChain(String chain) {
            return nat().stream().anyMatch(l -> l.startsWith(":" + chain + " "));
        }

        long count(String line) {
            return nat().stream().filter(line::equals).count();
        }

        boolean natCreatedByUs() {
            return nat().stream().anyMatch(l -> l.startsWith("-A " + OUTBOUND_CHAIN) && l.contains(CREATED_MARKER));
        }

        /** Only built-in chains with policy ACCEPT and no rule: the table holds nothing. */
        boolean natEmpty() {
            return nat().stream().allMatch(l -> l.matches(":(PREROUTING|INPUT|OUTPUT|POSTROUTING) ACCEPT .*"));
        }

        public boolean redirecting() {
            return count(JUMP_IN) > 0 && count(JUMP_OUT) > 0 && hasChain(INBOUND_CHAIN) && hasChain(OUTBOUND_CHAIN);
        }
    }

    /** The iptables-restore input that makes {@code current} redirect; re-adding rewrites our chains only. */
    public String renderInstall(Saved current) {
        boolean created = !current.tables().containsKey("nat") || current.natCreatedByUs();
        String mark = "0x" + Integer.toHexString(settings.mark());
        StringBuilder b = new StringBuilder();
        b.append("*nat\n");
        // Declaring a chain under --noflush creates it or empties it: re-adding replaces our rules.
        b.append(':').append(INBOUND_CHAIN).append(" - [0:0]\n");
        b.append(':').append(OUTBOUND_CHAIN).append(" - [0:0]\n");
        if (current.count(JUMP_IN) == 0) {
            b.append(JUMP_IN).append('\n');
        }
        if (current.count(JUMP_OUT) == 0) {
            b.append(JUMP_OUT).append('\n');
        }
        String in = "-A " + INBOUND_CHAIN + " ";
        b.append(in).append("-s ").append(settings.probeSource())
                .append("/32 -p tcp -m comment --comment \"kubelet probes, SNATed by the host\" -j RETURN\n");
        b.append(in).append("-p tcp -m tcp --dport ").append(settings.hbonePort()).append(" -j RETURN\n");
        b.append(in).append("-p tcp -j REDIRECT --to-ports ").append(settings.inboundPort()).append('\n');
        String out = "-A " + OUTBOUND_CHAIN + " ";
        b.append(out).append("-m mark --mark ").append(mark).append(" -j RETURN\n");
        b.append(out).append("-o lo -j RETURN\n");
        if (settings.dnsPort() > 0) {
            // The pod's resolver queries: UDP and TCP to port 53, to the ztunnel's DNS proxy on 127.0.0.1.
            for (String proto : List.of("udp", "tcp")) {
                b.append(out).append("-p ").append(proto).append(" -m ").append(proto)
                        .append(" --dport 53 -j REDIRECT --to-ports ").append(settings.dnsPort()).append('\n');
            }
        }
        b.append(out).append("-p tcp -j REDIRECT --to-ports ").append(settings.outboundPort()).append('\n');
        if (created) {
            // No target: matches nothing of consequence, only remembers who made the table.
            b.append(out).append("-m comment --comment \"").append(CREATED_MARKER).append("\"\n");
        }
        b.append("COMMIT\n");
        return b.toString();
    }

    /** The iptables-restore input that removes everything {@link #renderInstall} added; null if nothing is there. */
    public String renderRemove(Saved current) {
        StringBuilder b = new StringBuilder();
        for (long i = current.count(JUMP_IN); i > 0; i--) {
            b.append("-D PREROUTING -j ").append(INBOUND_CHAIN).append('\n');
        }
        for (long i = current.count(JUMP_OUT); i > 0; i--) {
            b.append("-D OUTPUT -j ").append(OUTBOUND_CHAIN).append('\n');
        }
        for (String chain : List.of(INBOUND_CHAIN, OUTBOUND_CHAIN)) {
            if (current.hasChain(chain)) {
                b.append("-F ").append(chain).append('\n').append("-X ").append(chain).append('\n');
            }
        }
        if (b.isEmpty()) {
            return null;
        }
        return "*nat\n" + b + "COMMIT\n";
    }

    public Saved save(Path netns) throws IOException {
        // Plain iptables-save lists existing tables only; "-t nat" would create the table on nf_tables.
        return Saved.parse(command.run(netns, null, "iptables-save"));
    }

    /** Installs (or re-installs) the rules in {@code netns}; idempotent. */
    public void install(Path netns) throws IOException {
        Saved before = save(netns);
        command.run(netns, renderInstall(before), "iptables-restore", "-w", "--noflush");
        migrateQueuedConnections(netns);
        LOG.debugf("rules installed in %s", netns);
    }

    static final Path MIGRATE_REQ = Path.of("/proc/sys/net/ipv4/tcp_migrate_req");

    /**
     * Sets tcp_migrate_req in the pod's namespace, from a thread that enters it (net sysctls are
     * those of the opening thread's namespace). A kernel without it (before 5.14) only logs: a
     * hand-over there may reset connections queued on the old listeners.
     */
    private static void migrateQueuedConnections(Path netns) throws IOException {
        try (dev.ambient.net.NetworkNamespace ns = dev.ambient.net.NetworkNamespace.open(netns)) {
            ns.call(() -> {
                java.nio.file.Files.writeString(MIGRATE_REQ, "1");
                return null;
            });
        } catch (java.nio.file.NoSuchFileException e) {
            LOG.warnf("%s: this kernel has no tcp_migrate_req; a ztunnel hand-over may reset queued connections",
                    netns);
        } catch (IOException e) {
            throw e;
        } catch (Exception e) {
            throw new IOException("cannot set tcp_migrate_req in " + netns + ": " + e.getMessage(), e);
        }
    }

    /** Whether tcp_migrate_req is set in {@code netns}. */
    public static boolean migratesQueuedConnections(Path netns) throws IOException {
        try (dev.ambient.net.NetworkNamespace ns = dev.ambient.net.NetworkNamespace.open(netns)) {
            return ns.call(() -> java.nio.file.Files.readString(MIGRATE_REQ).trim().equals("1"));
        } catch (IOException e) {
            throw e;
        } catch (Exception e) {
            throw new IOException(e);
        }
    }

    /** Removes the rules; returns false when there were none. */
    public boolean remove(Path netns) throws IOException {
        Saved before = save(netns);
        String input = renderRemove(before);
        if (input == null) {
            return false;
        }
        command.run(netns, input, "iptables-restore", "-w", "--noflush");
        if (before.natCreatedByUs()) {
            Saved after = save(netns);
            if (after.natEmpty() && nfTables(netns)) {
                command.run(netns, null, "nft", "delete", "table", "ip", "nat");
            }
        }
        return true;
    }

    public boolean installed(Path netns) throws IOException {
        return save(netns).redirecting();
    }

    private boolean nfTables(Path netns) throws IOException {
        return command.run(netns, null, "iptables", "--version").contains("nf_tables");
    }
}
