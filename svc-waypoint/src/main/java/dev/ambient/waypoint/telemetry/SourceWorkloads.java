package dev.ambient.waypoint.telemetry;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.workload.Workload;
import dev.ambient.waypoint.state.WaypointState;
import java.net.InetAddress;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Pattern;

/**
 * The source workload of a tunnel, for metric labels, with a bound on what a client can make up:
 * the workload the configuration holds at the connection's address when there is one; else what
 * the CONNECT's baggage says, only if its namespace is the verified peer's, its name is a
 * Kubernetes name, and it is one of the first few names seen for that identity (and of the first
 * {@value #MAX_NAMES} overall). Anything else is unknown, so the labels stay bounded whatever
 * clients send.
 */
public final class SourceWorkloads {

    /** Workload names a single identity may bring through baggage (its deployments and versions). */
    static final int NAMES_PER_IDENTITY = 4;
    /** Names from baggage, all identities together. */
    static final int MAX_NAMES = 1024;
    private static final Pattern NAME = Pattern.compile("[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?");

    private final ConcurrentHashMap<String, Set<String>> namesByIdentity = new ConcurrentHashMap<>();
    private final AtomicInteger names = new AtomicInteger();

    /** The source workload, or empty for "unknown". */
    public Optional<Workload> of(WaypointState state, InetAddress source, SpiffeId peer, CharSequence baggage) {
        Optional<Workload> known = state.workloadByAddress(source);
        if (known.isPresent() || peer == null) {
            return known;
        }
        return Baggage.sourceWorkload(baggage).filter(w -> w.getNamespace().equals(peer.namespace())
                && NAME.matcher(w.getWorkloadName()).matches() && admitted(peer.principal(), w.getWorkloadName()));
    }

    private boolean admitted(String identity, String name) {
        Set<String> seen = namesByIdentity.computeIfAbsent(identity, k -> ConcurrentHashMap.newKeySet());
        if (seen.contains(name)) {
            return true;
        }
        synchronized (seen) {
            if (seen.contains(name)) {
                return true;
            }
            if (seen.size() >= NAMES_PER_IDENTITY || names.get() >= MAX_NAMES) {
                return false;
            }
            names.incrementAndGet();
            seen.add(name);
            return true;
        }
    }
}
