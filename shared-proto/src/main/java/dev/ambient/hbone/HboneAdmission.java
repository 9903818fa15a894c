package dev.ambient.hbone;

import com.sun.management.UnixOperatingSystemMXBean;
import dev.ambient.identity.SpiffeId;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.jboss.logging.Logger;

/**
 * How many connections the HBONE listeners of one process hold at once. {@link HboneLimits} bounds
 * what one connection may cost; this bounds how many there are, so that neither a client that
 * never finishes its handshake nor a certificate holder opening thousands of connections can take
 * the file descriptors and memory of the process, which serves every pod of its node.
 *
 * <p>One instance per process, shared by all its HBONE listeners (a ztunnel has one per pod or
 * workload address): the descriptors and the heap are the process's, and a bound per listener
 * would be multiplied by the number of pods an attacker can reach. Thread-safe; a connection's
 * {@link Slot} is used on its event loop only.
 */
public final class HboneAdmission {

    private static final Logger LOG = Logger.getLogger(HboneAdmission.class);

    /**
     * Heap budgeted per HBONE connection when {@code max-connections} is automatic: an idle
     * connection (TLS 1.3 session, HTTP/2 codec, pipeline) measured about 9 KiB; streams and relay
     * buffers add to it.
     */
    static final long HEAP_PER_CONNECTION = 32 << 10;

    /** The least {@code max-connections} resolves to, however small the process. */
    static final int MIN_CONNECTIONS = 64;

    /**
     * The bounds as configured; 0 means automatic, see {@link #resolve}.
     *
     * @param maxHandshakesPerSource connections from one IP address between accept and the
     *        client's first HTTP/2 SETTINGS (TLS handshake, ALPN, preface); more are closed at accept
     * @param maxConnections HBONE connections the process holds at once, in their handshake or
     *        established; more are closed at accept
     * @param maxConnectionsPerIdentity established connections (past the client's first SETTINGS)
     *        of one peer SPIFFE identity, across all listeners; more get GOAWAY(ENHANCE_YOUR_CALM)
     */
    public record Limits(int maxHandshakesPerSource, int maxConnections, int maxConnectionsPerIdentity) {

        public static final Limits DEFAULTS = new Limits(256, 0, 0);

        public Limits {
            if (maxHandshakesPerSource < 1) {
                throw new IllegalArgumentException("HBONE limits: max handshakes per source must be positive");
            }
            if (maxConnections < 0 || maxConnectionsPerIdentity < 0) {
                throw new IllegalArgumentException("HBONE limits: connection bounds must be positive (0: automatic)");
            }
        }

        /**
         * The automatic bounds made concrete for a process: {@code maxConnections} half its file
         * descriptors (the other half stays for the sockets its tunnels dial, its own outbound
         * connections and everything else) and no more than its heap holds at
         * {@link #HEAP_PER_CONNECTION} each; {@code maxConnectionsPerIdentity} half of that, so that
         * one identity never holds more than the others together may still open.
         *
         * @param maxFds the process's RLIMIT_NOFILE
         * @param maxHeap the most heap the process may use, bytes
         */
        public Limits resolve(long maxFds, long maxHeap) {
            long automatic = Math.max(MIN_CONNECTIONS, Math.min(maxFds / 2, maxHeap / HEAP_PER_CONNECTION));
            int connections = maxConnections > 0 ? maxConnections : (int) Math.min(Integer.MAX_VALUE, automatic);
            int perIdentity = maxConnectionsPerIdentity > 0 ? maxConnectionsPerIdentity : Math.max(1, connections / 2);
            return new Limits(maxHandshakesPerSource, connections, perIdentity);
        }
    }

    /** What becomes of an accepted connection, or of one whose client just finished its handshake. */
    public sealed interface Decision {
    }

    /** Let in; the slot is released when the connection closes. */
    public record Admitted(Slot slot) implements Decision {
    }

    /** Turned away: which limit, and a sentence for the log. */
    public record Refused(HboneLimit limit, String detail) implements Decision {
    }

    private final Limits limits;
    private final long maxFds;
    private final AtomicInteger connections = new AtomicInteger();
    private final BoundedCounts<InetAddress> handshakes;
    private final BoundedCounts<SpiffeId> identities;
    private final ReportThrottle throttle = new ReportThrottle(ReportThrottle.INTERVAL);

    /** @param limits resolved: no automatic (0) bound left */
    public HboneAdmission(Limits limits, long maxFds) {
        if (limits.maxConnections() == 0 || limits.maxConnectionsPerIdentity() == 0) {
            throw new IllegalArgumentException("HBONE admission needs resolved limits: " + limits);
        }
        this.limits = limits;
        this.maxFds = maxFds;
        this.handshakes = new BoundedCounts<>(limits.maxHandshakesPerSource());
        this.identities = new BoundedCounts<>(limits.maxConnectionsPerIdentity());
    }

    /** The automatic bounds resolved for this process (its RLIMIT_NOFILE and max heap), logged once. */
    public static HboneAdmission forThisProcess(Limits configured) {
        long fds = maxFileDescriptors();
        long heap = Runtime.getRuntime().maxMemory();
        Limits resolved = configured.resolve(fds, heap);
        LOG.infof("HBONE admission: at most %d connections (%s; RLIMIT_NOFILE %s, max heap %d MiB), %d established per"
                + " peer identity, %d in their handshake per source address", resolved.maxConnections(),
                configured.maxConnections() > 0 ? "configured" : "automatic", fds == Long.MAX_VALUE ? "unknown" : fds,
                heap >> 20, resolved.maxConnectionsPerIdentity(), resolved.maxHandshakesPerSource());
        if (resolved.maxConnections() > fds / 2) {
            LOG.warnf("HBONE admission: max-connections %d is more than half of RLIMIT_NOFILE (%d): a flood of connections"
                    + " may leave no file descriptor for the tunnels' own sockets", resolved.maxConnections(), fds);
        }
        return new HboneAdmission(resolved, fds);
    }

    /** The process's RLIMIT_NOFILE (the JVM raises its soft limit to the hard one at start), or MAX_VALUE if unknown. */
    public static long maxFileDescriptors() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof UnixOperatingSystemMXBean unix) {
            long max = unix.getMaxFileDescriptorCount();
            if (max > 0) {
                return max;
            }
        }
        return Long.MAX_VALUE;
    }

    public Limits limits() {
        return limits;
    }

    /** At accept, before anything is read: room for one more connection, and one more handshake from {@code source}. */
    public Decision admit(InetAddress source) {
        int held = connections.getAndUpdate(n -> n < limits.maxConnections() ? n + 1 : n);
        if (held >= limits.maxConnections()) {
            return new Refused(HboneLimit.CONNECTIONS, "the process holds " + held + " HBONE connections, its bound"
                    + " (max-connections " + limits.maxConnections() + ", RLIMIT_NOFILE "
                    + (maxFds == Long.MAX_VALUE ? "unknown" : maxFds) + "); closed at accept");
        }
        if (!handshakes.tryAcquire(source)) {
            connections.decrementAndGet();
            return new Refused(HboneLimit.HANDSHAKES_PER_SOURCE, limits.maxHandshakesPerSource()
                    + " connections from this address are in their handshake (TLS, HTTP/2 preface), its bound"
                    + " (max-handshakes-per-source); closed at accept");
        }
        return new Admitted(new Slot(source));
    }

    /** HBONE connections held now (in their handshake or established). */
    public int connections() {
        return connections.get();
    }

    /** Connections from {@code source} in their handshake now. */
    public int handshakesFrom(InetAddress source) {
        return handshakes.count(source);
    }

    /** Established connections of {@code peer} now. */
    public int connectionsOf(SpiffeId peer) {
        return identities.count(peer);
    }

    /** Reports a refusal to {@code handler}: a log line at most every few seconds per limit, every one counted. */
    void report(HboneRequestHandler handler, java.net.SocketAddress remote, Refused refused) {
        throttle.report(handler, remote, refused.limit(), refused.detail());
    }

    /**
     * One admitted connection's place: first among the handshakes of its source address, then
     * among the connections of its peer identity. Event loop of the connection only.
     */
    public final class Slot {
        private InetAddress inHandshake;
        private SpiffeId identity;
        private boolean released;

        private Slot(InetAddress source) {
            this.inHandshake = source;
        }

        /**
         * The client's first SETTINGS arrived: the handshake is over, and the connection now counts
         * for {@code peer}; refused if that identity holds its bound already. A refused connection,
         * while it is told why and closed, keeps its place among its address's handshakes: a client
         * reconnecting in a loop has no more of them lingering than of any other handshake.
         */
        public Optional<Refused> established(SpiffeId peer) {
            if (released || identity != null) {
                return Optional.empty();
            }
            if (!identities.tryAcquire(peer)) {
                return Optional.of(new Refused(HboneLimit.CONNECTIONS_PER_IDENTITY, peer.uri() + " holds "
                        + limits.maxConnectionsPerIdentity() + " established HBONE connections here, the bound per"
                        + " identity (max-connections-per-identity); GOAWAY(ENHANCE_YOUR_CALM), closing"));
            }
            identity = peer;
            leaveHandshake();
            return Optional.empty();
        }

        /** The connection closed: everything it held is given back, once. */
        public void release() {
            if (released) {
                return;
            }
            released = true;
            leaveHandshake();
            if (identity != null) {
                identities.release(identity);
            }
            connections.decrementAndGet();
        }

        private void leaveHandshake() {
            if (inHandshake != null) {
                handshakes.release(inHandshake);
                inHandshake = null;
            }
        }
    }
}
