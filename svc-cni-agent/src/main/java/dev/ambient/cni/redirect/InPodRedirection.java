package dev.ambient.cni.redirect;

import dev.ambient.hbone.Authority;
import dev.ambient.net.NetworkNamespace;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jboss.logging.Logger;

/**
 * The redirection rules inside one pod's network namespace (Istio's in-pod semantics, our own
 * chain names), installed and removed each with one {@code iptables-restore --noflush}, so a pod
 * never sees half of them ({@code -w}: wait for the xtables lock on legacy backends). Capture uses the nat table: REDIRECT keeps the original destination
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
 *       does; over IPv6 to Istio's fd16:9254:7127:1337:ffff:ffff:ffff:ffff); that source is exempt,
 *       so probes reach the application directly and a pod is not reported unhealthy because the
 *       mesh refused plaintext.</li>
 * </ul>
 *
 * <p>Removal deletes exactly what was added. If the nat table did not exist before (a fresh pod on
 * the nf_tables backend), a marker rule says so and removal deletes the table too, so
 * {@code iptables-save} afterwards is what it was before.
 *
 * <p>Source addresses: the ztunnel connects to the application from the client's own address (a
 * transparent socket in the pod). The mangle table tags such connections by the ztunnel's mark on
 * their looped-back packets and marks the application's replies, and {@link ReplyRouting}'s policy
 * rule returns those to the local socket; the same marker scheme makes the mangle table's removal
 * exact. No sysctl is needed: the ztunnel's packets reach the application over loopback with their
 * route already attached, so reverse-path filtering never looks at the foreign source.
 *
 * <p>Dual-stack: the same rules (nat and mangle) go into the IPv6 tables with
 * {@code ip6tables-restore} (REDIRECT sends to {@code ::1} in OUTPUT, where the ztunnel has its DNS
 * listener too, and to the receiving address in PREROUTING, which its {@code ::} listeners take),
 * with IPv6 reply routing beside them, removed as exactly; there the IPv6 probe source is the one
 * exempt ({@link HostProbeSnat} SNATs the node's IPv6 probes to it). A node without IPv6 (no {@code /proc/sys/net/ipv6}) or
 * without a working ip6tables gets the IPv4 rules only, said in one log line; but a pod that has an
 * IPv6 address is then refused, since its IPv6 traffic would pass the mesh by.
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
    /** Our chains have the same names in both tables. */
    static final List<String> TABLES = List.of("nat", "mangle");

    /**
     * One address family's tools: its iptables-save/-restore, the nf_tables family of its tables,
     * {@code ip}'s family switch, and its whole address space (for the reply route).
     */
    public record Family(String name, String save, String restore, String iptables, String nftFamily, String ip,
            String everywhere) {
        public static final Family IPV4 = new Family("IPv4", "iptables-save", "iptables-restore", "iptables", "ip",
                "-4", "0.0.0.0/0");
        public static final Family IPV6 = new Family("IPv6", "ip6tables-save", "ip6tables-restore", "ip6tables",
                "ip6", "-6", "::/0");
    }

    private final RedirectSettings settings;
    private final NetnsCommand command;
    private final ReplyRouting replyRouting4;
    private final ReplyRouting replyRouting6;
    private final Family ipv6;
    private final Path ipv6Sysctl;
    /** Set once the IPv4-only node has been said in the log. */
    private final AtomicBoolean ipv4OnlyLogged = new AtomicBoolean();
    /** Set once a pod's tcp_migrate_req could not be set (said once in the log). */
    private final AtomicBoolean migrateWarned = new AtomicBoolean();

    public InPodRedirection(RedirectSettings settings, NetnsCommand command) {
        this(settings, command, Family.IPV6, Path.of("/proc/sys/net/ipv6"));
    }

    /** With the IPv6 tools and the kernel's IPv6 switch named (tests: a node without them). */
    InPodRedirection(RedirectSettings settings, NetnsCommand command, Family ipv6, Path ipv6Sysctl) {
        this.settings = settings;
        this.command = command;
        this.replyRouting4 = new ReplyRouting(settings, command, Family.IPV4);
        this.replyRouting6 = new ReplyRouting(settings, command, Family.IPV6);
        this.ipv6 = ipv6;
        this.ipv6Sysctl = ipv6Sysctl;
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

        List<String> table(String table) {
            return tables.getOrDefault(table, List.of());
        }

        List<String> nat() {
            return table("nat");
        }

        boolean hasChain(String chain) {
            return hasChain("nat", chain);
        }

        long count(String line) {
            return count("nat", line);
        }

        boolean hasChain(String table, String chain) {
            return table(table).stream().anyMatch(l -> l.startsWith(":" + chain + " "));
        }

        long count(String table, String line) {
            return table(table).stream().filter(line::equals).count();
        }

        boolean createdByUs(String table) {
            return table(table).stream()
                    .anyMatch(l -> l.startsWith("-A " + OUTBOUND_CHAIN) && l.contains(createdMarker(table)));
        }

        /** Only built-in chains with policy ACCEPT and no rule: the table holds nothing. */
        boolean empty(String table) {
            return table(table).stream()
                    .allMatch(l -> l.matches(":(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) ACCEPT .*"));
        }

        public boolean redirecting() {
            return TABLES.stream().allMatch(t -> count(t, JUMP_IN) > 0 && count(t, JUMP_OUT) > 0
                    && hasChain(t, INBOUND_CHAIN) && hasChain(t, OUTBOUND_CHAIN));
        }
    }

    /** The iptables-restore input that makes {@code current} redirect; re-adding rewrites our chains only. */
    public String renderInstall(Saved current) {
        return renderInstall(Family.IPV4, current);
    }

    /** As above, for one family's tables (IPv6: the same rules, with the IPv6 probe source exempt). */
    public String renderInstall(Family family, Saved current) {
        String mark = "0x" + Integer.toHexString(settings.mark());
        StringBuilder b = new StringBuilder();
        declare(b, current, "nat");
        String in = "-A " + INBOUND_CHAIN + " ";
        String probes = family == Family.IPV6 ? settings.probeSourceIpv6() + "/128" : settings.probeSource() + "/32";
        b.append(in).append("-s ").append(probes)
                .append(" -p tcp -m comment --comment \"kubelet probes, SNATed by the host\" -j RETURN\n");
        b.append(in).append("-p tcp -m tcp --dport ").append(settings.hbonePort()).append(" -j RETURN\n");
        b.append(in).append("-p tcp -j REDIRECT --to-ports ").append(settings.inboundPort()).append('\n');
        String out = "-A " + OUTBOUND_CHAIN + " ";
        b.append(out).append("-m mark --mark ").append(mark).append(" -j RETURN\n");
        b.append(out).append("-o lo -j RETURN\n");
        if (settings.dnsPort() > 0) {
            // The pod's resolver queries: UDP and TCP to port 53, to the ztunnel's DNS proxy on 127.0.0.1 (::1).
            for (String proto : List.of("udp", "tcp")) {
                b.append(out).append("-p ").append(proto).append(" -m ").append(proto)
                        .append(" --dport 53 -j REDIRECT --to-ports ").append(settings.dnsPort()).append('\n');
            }
        }
        b.append(out).append("-p tcp -j REDIRECT --to-ports ").append(settings.outboundPort()).append('\n');
        markCreated(b, current, "nat");
        b.append("COMMIT\n");

        // Replies to the ztunnel's transparent sockets (it connects to the application from the
        // client's address): its packets come back in over loopback with its mark, which tags the
        // connection; the application's packets of a tagged connection get the reply mark, which
        // ReplyRouting sends to the local socket instead of out through eth0.
        String reply = ReplyRouting.hex(settings.replyMark()) + "/" + ReplyRouting.hex(settings.replyMarkMask());
        String mask = ReplyRouting.hex(settings.replyMarkMask());
        declare(b, current, "mangle");
        b.append(in).append("-m mark --mark ").append(mark).append(" -j CONNMARK --set-xmark ").append(reply)
                .append('\n');
        b.append(out).append("-m mark --mark ").append(mark).append(" -j RETURN\n");
        b.append(out).append("-m connmark --mark ").append(reply).append(" -j CONNMARK --restore-mark --nfmask ")
                .append(mask).append(" --ctmask ").append(mask).append('\n');
        markCreated(b, current, "mangle");
        b.append("COMMIT\n");
        return b.toString();
    }

    /** Our two chains in {@code table} (declaring a chain under --noflush creates or empties it), and the jumps if missing. */
    private static void declare(StringBuilder b, Saved current, String table) {
        b.append('*').append(table).append('\n');
        b.append(':').append(INBOUND_CHAIN).append(" - [0:0]\n");
        b.append(':').append(OUTBOUND_CHAIN).append(" - [0:0]\n");
        if (current.count(table, JUMP_IN) == 0) {
            b.append(JUMP_IN).append('\n');
        }
        if (current.count(table, JUMP_OUT) == 0) {
            b.append(JUMP_OUT).append('\n');
        }
    }

    /** No target: matches nothing of consequence, only remembers that the table was ours to delete. */
    private static void markCreated(StringBuilder b, Saved current, String table) {
        if (!current.tables().containsKey(table) || current.createdByUs(table)) {
            b.append("-A ").append(OUTBOUND_CHAIN).append(" -m comment --comment \"").append(createdMarker(table))
                    .append("\"\n");
        }
    }

    static String createdMarker(String table) {
        return "ambient-mesh created the " + table + " table";
    }

    /** The iptables-restore input that removes everything {@link #renderInstall} added; null if nothing is there. */
    public String renderRemove(Saved current) {
        StringBuilder all = new StringBuilder();
        for (String table : TABLES) {
            StringBuilder b = new StringBuilder();
            for (long i = current.count(table, JUMP_IN); i > 0; i--) {
                b.append("-D PREROUTING -j ").append(INBOUND_CHAIN).append('\n');
            }
            for (long i = current.count(table, JUMP_OUT); i > 0; i--) {
                b.append("-D OUTPUT -j ").append(OUTBOUND_CHAIN).append('\n');
            }
            for (String chain : List.of(INBOUND_CHAIN, OUTBOUND_CHAIN)) {
                if (current.hasChain(table, chain)) {
                    b.append("-F ").append(chain).append('\n').append("-X ").append(chain).append('\n');
                }
            }
            if (!b.isEmpty()) {
                all.append('*').append(table).append('\n').append(b).append("COMMIT\n");
            }
        }
        return all.isEmpty() ? null : all.toString();
    }

    public Saved save(Path netns) throws IOException {
        return save(Family.IPV4, netns);
    }

    public Saved save(Family family, Path netns) throws IOException {
        // Plain iptables-save lists existing tables only; "-t nat" would create the table on nf_tables.
        return Saved.parse(command.run(netns, null, family.save()));
    }

    /** Installs (or re-installs) the rules in {@code netns}, for IPv6 too where the node has it; idempotent. */
    public void install(Path netns) throws IOException {
        install(Family.IPV4, replyRouting4, netns, save(netns));
        migrateQueuedConnections(netns);
        Optional<Saved> v6 = saveIpv6(netns);
        if (v6.isPresent()) {
            install(ipv6, replyRouting6, netns, v6.get());
            return;
        }
        String podIpv6 = globalIpv6(netns);
        if (!podIpv6.isEmpty()) {
            // The IPv4 rules stay until the caller removes them; the pod is not let in.
            throw new NetnsCommand.Failed("pod in " + netns + " has the IPv6 address " + podIpv6 + " but this node"
                    + " cannot install IPv6 rules (" + ipv6.restore() + " missing or failing): its IPv6 traffic would"
                    + " bypass the mesh; refused");
        }
    }

    private void install(Family family, ReplyRouting routing, Path netns, Saved before) throws IOException {
        // Routing first: a reply mark without its route would change nothing, the reverse could.
        routing.install(netns);
        command.run(netns, renderInstall(family, before), family.restore(), "-w", "--noflush");
        LOG.debugf("%s rules installed in %s", family.name(), netns);
    }

    static final Path MIGRATE_REQ = Path.of("/proc/sys/net/ipv4/tcp_migrate_req");

    /**
     * Sets tcp_migrate_req in the pod's namespace, from a thread that enters it (net sysctls are
     * those of the opening thread's namespace). Best effort: without it a hand-over may reset the
     * few connections queued on the old listeners at the moment they close, which is no reason to
     * refuse a pod. A kernel without it (before 5.14), or a /proc/sys the agent cannot write (a
     * container that is not privileged: read-only), is said once in the log.
     */
    private void migrateQueuedConnections(Path netns) {
        try (NetworkNamespace ns = NetworkNamespace.open(netns)) {
            ns.call(() -> {
                Files.writeString(MIGRATE_REQ, "1");
                return null;
            });
        } catch (Exception e) {
            if (migrateWarned.compareAndSet(false, true)) {
                LOG.warnf("cannot set tcp_migrate_req in pod namespaces (first: %s: %s); a ztunnel hand-over may"
                        + " reset connections queued on the old instance's listeners (a privileged agent can set it)",
                        netns, e instanceof java.nio.file.NoSuchFileException ? "this kernel has no " + MIGRATE_REQ
                                : e.toString());
            }
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

    /** Removes the rules of both families; returns false when there were none. */
    public boolean remove(Path netns) throws IOException {
        boolean removed = remove(Family.IPV4, replyRouting4, netns, save(netns));
        Optional<Saved> v6 = saveIpv6(netns);
        if (v6.isPresent()) {
            removed |= remove(ipv6, replyRouting6, netns, v6.get());
        }
        return removed;
    }

    private boolean remove(Family family, ReplyRouting routing, Path netns, Saved before) throws IOException {
        String input = renderRemove(before);
        if (input != null) {
            command.run(netns, input, family.restore(), "-w", "--noflush");
            Saved after = null;
            for (String table : TABLES) {
                if (before.createdByUs(table)) {
                    after = after == null ? save(family, netns) : after;
                    if (after.empty(table) && nfTables(family, netns)) {
                        command.run(netns, null, "nft", "delete", "table", family.nftFamily(), table);
                    }
                }
            }
        }
        boolean routed = routing.remove(netns);
        return input != null || routed;
    }

    public boolean installed(Path netns) throws IOException {
        if (!save(netns).redirecting() || !replyRouting4.installed(netns)) {
            return false;
        }
        Optional<Saved> v6 = saveIpv6(netns);
        return v6.isEmpty() || v6.get().redirecting() && replyRouting6.installed(netns);
    }

    /**
     * The pod's IPv6 tables; empty where the node has no IPv6 or no working ip6tables (said once in
     * the log): the IPv4 rules alone then.
     */
    private Optional<Saved> saveIpv6(Path netns) {
        String why;
        if (!Files.isDirectory(ipv6Sysctl)) {
            why = "the kernel has no IPv6 (" + ipv6Sysctl + " missing)";
        } else {
            try {
                return Optional.of(save(ipv6, netns));
            } catch (IOException e) {
                why = ipv6.save() + " cannot run: " + e.getMessage();
            }
        }
        if (ipv4OnlyLogged.compareAndSet(false, true)) {
            LOG.warnf("in-pod rules for IPv4 only on this node: %s (ip6tables is in the iptables package)", why);
        }
        return Optional.empty();
    }

    /**
     * A global IPv6 address of the pod ("" if none), from if_inet6 read on a thread inside its
     * namespace (scope 00 = global); no process, so no tool the image might lack decides this.
     */
    private static String globalIpv6(Path netns) throws IOException {
        try (NetworkNamespace ns = NetworkNamespace.open(netns)) {
            Path file = Path.of("/proc/thread-self/net/if_inet6");
            List<String> lines = ns.call(() -> Files.exists(file) ? Files.readAllLines(file) : List.<String>of());
            for (String line : lines) {
                String[] f = line.trim().split("\\s+");
                if (f.length >= 6 && f[0].length() == 32 && f[3].equals("00")) {
                    return Authority.host(InetAddress.getByAddress(HexFormat.of().parseHex(f[0])));
                }
            }
            return "";
        } catch (IOException e) {
            throw e;
        } catch (Exception e) {
            throw new IOException("cannot read the IPv6 addresses in " + netns + ": " + e.getMessage(), e);
        }
    }

    private boolean nfTables(Family family, Path netns) throws IOException {
        return command.run(netns, null, family.iptables(), "--version").contains("nf_tables");
    }
}
