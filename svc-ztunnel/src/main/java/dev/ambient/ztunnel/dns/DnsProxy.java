package dev.ambient.ztunnel.dns;

import dev.ambient.proto.workload.Workload;
import dev.ambient.ztunnel.inpod.SocketNamespace;
import dev.ambient.ztunnel.state.StateSnapshot;
import dev.ambient.ztunnel.state.WorkloadStore;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.jboss.logging.Logger;

/**
 * The ztunnel's DNS proxy (Istio's, on 15053): answers A and AAAA for the names of the mesh
 * ({@link DnsNames}: Kubernetes services, ServiceEntry hosts with their auto-allocated addresses),
 * NXDOMAIN for search-path expansions of them, and forwards everything else to the upstream
 * resolvers, caching their answers. It is never the single point of failure of a pod's names: a
 * known name is answered without the upstream, an upstream that does not answer gives SERVFAIL
 * within its timeout (the client's resolver tries again or moves on), an answer too large for UDP
 * comes back truncated so the client asks over TCP, and a query that cannot be read gets FORMERR
 * (or, without even a header, nothing) and a log line. What a hostile pod can make it do is bounded:
 * its query rate, its queries waiting for the upstream and in all, its TCP connections, the size
 * of its messages and of the cache.
 */
public final class DnsProxy {

    private static final Logger LOG = Logger.getLogger(DnsProxy.class);

    /**
     * @param queriesPerSecond refill of each client's query budget
     * @param burst the budget's size
     * @param maxOutstanding queries waiting for an upstream, in all
     * @param maxOutstandingPerClient of one client
     * @param maxTcpConnectionsPerClient open TCP connections of one client
     * @param tcpIdleTimeout a TCP connection without a query for this long is closed
     * @param localTtl TTL of the answers the proxy gives itself, seconds
     */
    public record Limits(double queriesPerSecond, int burst, int maxOutstanding, int maxOutstandingPerClient,
            int maxTcpConnectionsPerClient, Duration tcpIdleTimeout, int localTtl) {
    }

    /** One source of queries: a pod served in-pod, or in shared mode one address. */
    public final class Client {
        private final String description;
        private final Supplier<Optional<Workload>> workload;
        private final SocketNamespace netns;
        private final TokenBucket budget;
        private final AtomicInteger outstanding = new AtomicInteger();
        private final AtomicInteger tcpConnections = new AtomicInteger();

        private Client(String description, Supplier<Optional<Workload>> workload, SocketNamespace netns) {
            this.description = description;
            this.workload = workload;
            this.netns = netns;
            this.budget = new TokenBucket(limits.queriesPerSecond(), limits.burst());
        }

        public String description() {
            return description;
        }

        /** A TCP connection may open: false (refused, logged, counted) beyond the client's limit. */
        public boolean openTcp() {
            if (tcpConnections.incrementAndGet() > limits.maxTcpConnectionsPerClient()) {
                tcpConnections.decrementAndGet();
                refuse("tcp_connections", "%s has %d DNS TCP connections open (ztunnel.dns.max-tcp-connections);"
                        + " connection refused", description, limits.maxTcpConnectionsPerClient());
                return false;
            }
            return true;
        }

        public void closedTcp() {
            tcpConnections.decrementAndGet();
        }

        /** A TCP message beyond the size any query needs: the connection is closed. */
        void refusedOversized(String why) {
            refuse("oversized", "%s sent an oversized DNS message over TCP (%s); connection closed", description, why);
        }
    }

    private record Names(StateSnapshot state, DnsNames names) {
    }

    private final WorkloadStore store;
    private final String clusterDomain;
    private final DnsCache cache;
    private final DnsUpstream upstream;
    private final DnsMetrics metrics;
    private final Limits limits;
    private final AtomicInteger outstanding = new AtomicInteger();
    private final LogBudget logBudget = new LogBudget(20, Duration.ofSeconds(10));
    private volatile Names names;

    public DnsProxy(WorkloadStore store, String clusterDomain, DnsCache cache, DnsUpstream upstream,
            DnsMetrics metrics, Limits limits) {
        this.store = store;
        this.clusterDomain = clusterDomain;
        this.cache = cache;
        this.upstream = upstream;
        this.metrics = metrics;
        this.limits = limits;
    }

    public Client client(String description, Supplier<Optional<Workload>> workload, SocketNamespace netns) {
        return new Client(description, workload, netns);
    }

    public Limits limits() {
        return limits;
    }

    public DnsUpstream upstream() {
        return upstream;
    }

    /**
     * Answers one query from {@code client}: completes with the answer's bytes (for UDP already
     * within the client's size), or with null when the query is dropped.
     */
    public CompletableFuture<byte[]> answer(Client client, byte[] packet, boolean tcp) {
        if (!client.budget.take()) {
            refuse("rate_limited", "%s sends more than %s DNS queries a second (ztunnel.dns.queries-per-second);"
                    + " query dropped", client.description, limits.queriesPerSecond());
            return CompletableFuture.completedFuture(null);
        }
        Optional<Workload> source = client.workload.get();
        metrics.request(source.map(Workload::getNamespace).orElse("unknown"),
                source.map(w -> w.getWorkloadName().isEmpty() ? w.getName() : w.getWorkloadName()).orElse("unknown"));
        DnsMessage query;
        try {
            query = DnsMessage.parse(packet);
        } catch (DnsMessage.Malformed e) {
            if (e.id() < 0 || e.response()) {
                refuse("malformed", "%s sent %d bytes that are no DNS query (%s); dropped", client.description,
                        packet.length, e.getMessage());
                return CompletableFuture.completedFuture(null);
            }
            refuse("malformed", "%s sent a malformed DNS query (%s); answered FORMERR", client.description,
                    e.getMessage());
            metrics.answered("formerr");
            return done(DnsMessage.header(e.id(), packet[2] & 0x79, DnsMessage.FORMERR), null, tcp);
        }
        if (query.response()) {
            refuse("response", "%s sent a DNS response to the proxy; dropped", client.description);
            return CompletableFuture.completedFuture(null);
        }
        if (query.opcode() != 0) {
            metrics.answered("notimp");
            return done(DnsMessage.header(query.id(), packet[2] & 0x79, DnsMessage.NOTIMP), query, tcp);
        }
        if (query.questions().size() != 1) {
            refuse("malformed", "%s sent a DNS query with %d questions; answered FORMERR", client.description,
                    query.questions().size());
            metrics.answered("formerr");
            return done(DnsMessage.header(query.id(), packet[2] & 0x79, DnsMessage.FORMERR), query, tcp);
        }
        DnsMessage.Question q = query.questions().getFirst();
        if (q.qclass() == DnsMessage.CLASS_IN) {
            String namespace = source.map(Workload::getNamespace).orElse(null);
            switch (names().lookup(q.name(), namespace)) {
                case DnsNames.Lookup.Known known when q.type() == DnsMessage.TYPE_A
                        || q.type() == DnsMessage.TYPE_AAAA -> {
                    metrics.answered("local");
                    List<byte[]> family = new ArrayList<>();
                    int size = q.type() == DnsMessage.TYPE_A ? 4 : 16;
                    known.addresses().stream().filter(a -> a.length == size).forEach(family::add);
                    // No address of the family asked: "no data", so the client never finds the real one elsewhere.
                    return done(DnsMessage.answer(query, DnsMessage.NOERROR, true, family, q.type(),
                            limits.localTtl()), query, tcp);
                }
                case DnsNames.Lookup.NoSuchName n -> {
                    metrics.answered("nxdomain");
                    return done(DnsMessage.answer(query, DnsMessage.NXDOMAIN, true), query, tcp);
                }
                default -> {
                    // other types of known names (HTTPS, TXT, ...) and unknown names: the upstream's word
                }
            }
        }
        DnsCache.Key key = new DnsCache.Key(upstream.describe(), q.key(), q.type(), q.qclass());
        byte[] cached = cache.get(key, query);
        if (cached != null) {
            metrics.answered("cache");
            return done(cached, query, tcp);
        }
        return forward(client, query, key, tcp);
    }

    private CompletableFuture<byte[]> forward(Client client, DnsMessage query, DnsCache.Key key, boolean tcp) {
        if (outstanding.incrementAndGet() > limits.maxOutstanding()) {
            outstanding.decrementAndGet();
            refuse("outstanding", "%d DNS queries already wait for the upstream (ztunnel.dns.max-outstanding);"
                    + " %s answered SERVFAIL", limits.maxOutstanding(), client.description);
            metrics.answered("servfail");
            return done(DnsMessage.answer(query, DnsMessage.SERVFAIL, false), query, tcp);
        }
        if (client.outstanding.incrementAndGet() > limits.maxOutstandingPerClient()) {
            client.outstanding.decrementAndGet();
            outstanding.decrementAndGet();
            refuse("outstanding", "%s has %d DNS queries waiting for the upstream"
                    + " (ztunnel.dns.max-outstanding-per-pod); answered SERVFAIL", client.description,
                    limits.maxOutstandingPerClient());
            metrics.answered("servfail");
            return done(DnsMessage.answer(query, DnsMessage.SERVFAIL, false), query, tcp);
        }
        long start = System.nanoTime();
        return upstream.exchange(query, tcp, client.netns).handle((answer, err) -> {
            client.outstanding.decrementAndGet();
            outstanding.decrementAndGet();
            if (err != null) {
                Throwable cause = err instanceof java.util.concurrent.CompletionException && err.getCause() != null
                        ? err.getCause() : err;
                String kind = cause instanceof DnsUpstream.Failure f ? f.kind() : "error";
                metrics.upstreamFailure(kind);
                metrics.answered("servfail");
                if (logBudget.allow()) {
                    LOG.warnf("dns: %s asked %s (%s): %s; answered SERVFAIL%s", client.description,
                            query.questions().getFirst().name(), tcp ? "tcp" : "udp", cause.getMessage(),
                            logBudget.suppressedNote());
                }
                return fit(DnsMessage.answer(query, DnsMessage.SERVFAIL, false), query, tcp);
            }
            metrics.upstreamRequest(Duration.ofNanos(System.nanoTime() - start));
            metrics.answered("upstream");
            cache.put(key, answer);
            return fit(answer.raw(), query, tcp);
        });
    }

    private DnsNames names() {
        StateSnapshot state = store.current();
        Names n = names;
        if (n == null || n.state() != state) {
            n = new Names(state, DnsNames.of(state, clusterDomain));
            names = n;
        }
        return n.names();
    }

    private static CompletableFuture<byte[]> done(byte[] answer, DnsMessage query, boolean tcp) {
        return CompletableFuture.completedFuture(fit(answer, query, tcp));
    }

    private static byte[] fit(byte[] answer, DnsMessage query, boolean tcp) {
        if (tcp) {
            return answer;
        }
        return DnsMessage.fitUdp(answer, query == null ? DnsMessage.MIN_UDP : query.udpLimit());
    }

    private void refuse(String reason, String format, Object... args) {
        metrics.refused(reason);
        if (logBudget.allow()) {
            LOG.warnf("dns: " + format + "%s", appendNote(args));
        }
    }

    private Object[] appendNote(Object[] args) {
        Object[] out = java.util.Arrays.copyOf(args, args.length + 1);
        out[args.length] = logBudget.suppressedNote();
        return out;
    }

    /** A token bucket: {@code rate} tokens a second up to {@code burst}. */
    static final class TokenBucket {
        private final double rate;
        private final double burst;
        private double tokens;
        private long last = System.nanoTime();

        TokenBucket(double rate, int burst) {
            this.rate = rate;
            this.burst = Math.max(1, burst);
            this.tokens = this.burst;
        }

        synchronized boolean take() {
            long now = System.nanoTime();
            tokens = Math.min(burst, tokens + (now - last) / 1e9 * rate);
            last = now;
            if (tokens >= 1) {
                tokens -= 1;
                return true;
            }
            return false;
        }
    }

    /**
     * At most {@code lines} warnings per window, so a pod sending garbage cannot flood the log: the
     * first line after a quiet window says how many were left out.
     */
    static final class LogBudget {
        private final int lines;
        private final long windowNanos;
        private final AtomicLong windowStart = new AtomicLong(System.nanoTime());
        private final AtomicInteger used = new AtomicInteger();
        private final AtomicInteger suppressed = new AtomicInteger();
        private volatile int lastSuppressed;

        LogBudget(int lines, Duration window) {
            this.lines = lines;
            this.windowNanos = window.toNanos();
        }

        boolean allow() {
            long now = System.nanoTime();
            long start = windowStart.get();
            if (now - start > windowNanos && windowStart.compareAndSet(start, now)) {
                used.set(0);
                lastSuppressed = suppressed.getAndSet(0);
            }
            if (used.incrementAndGet() <= lines) {
                return true;
            }
            suppressed.incrementAndGet();
            return false;
        }

        String suppressedNote() {
            int n = lastSuppressed;
            if (n == 0) {
                return "";
            }
            lastSuppressed = 0;
            return " (" + n + " similar DNS lines left out before this one)";
        }
    }
}
