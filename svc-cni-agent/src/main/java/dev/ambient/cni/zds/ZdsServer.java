package dev.ambient.cni.zds;

import dev.ambient.cni.metrics.CniMetrics;
import dev.ambient.net.NetworkNamespace;
import dev.ambient.proto.zds.AddWorkload;
import dev.ambient.proto.zds.DelWorkload;
import dev.ambient.proto.zds.KeepWorkload;
import dev.ambient.proto.zds.Replaced;
import dev.ambient.proto.zds.SnapshotSent;
import dev.ambient.proto.zds.WorkloadInfo;
import dev.ambient.proto.zds.WorkloadRequest;
import dev.ambient.proto.zds.WorkloadResponse;
import dev.ambient.proto.zds.ZdsHello;
import dev.ambient.proto.zds.ZdsVersion;
import dev.ambient.zds.AllowedPeers;
import dev.ambient.zds.FileDescriptors;
import dev.ambient.zds.PeerCheck;
import dev.ambient.zds.PeerCredentials;
import dev.ambient.zds.ZdsPacket;
import dev.ambient.zds.ZdsServerSocket;
import dev.ambient.zds.ZdsSocket;
import java.io.EOFException;
import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.jboss.logging.Logger;

/**
 * The agent's side of ZDS. It keeps the set of pods the ztunnel must proxy (each with its open
 * network namespace) and brings every connected ztunnel in line with it: on every (re)connect, Add
 * for every pod then SnapshotSent (the ztunnel drops what was not named); afterwards each Add and
 * Del as it happens, to every connection. One request at a time per connection, each answered by
 * one ack within {@code ackTimeout}, or that connection is dropped (the ztunnel reconnects and gets
 * the whole snapshot again).
 *
 * <p>Hand-over: up to {@link #MAX_CONNECTIONS} ztunnels are served at once (an upgrade starts the
 * new one beside the old). The current one is the instance that started last (its hello says
 * when). Once it has acked its snapshot and everything queued for it since, every older connection
 * is sent Replaced and closed after its ack (or its ack timeout): the old instance stops accepting
 * and drains while the new one's listeners, bound beside it, take the pods' connections.
 *
 * <p>Blocking socket I/O runs on one platform thread per connection; callers only enqueue and get
 * a future of the ack. One connection that stalls never delays another.
 */
public final class ZdsServer implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(ZdsServer.class);
    /**
     * Connections served at once, said hello or not: an old and a new ztunnel. Only peers of an
     * allowed uid count (others are closed at accept); this bounds threads and replays.
     */
    public static final int MAX_CONNECTIONS = 2;
    /** How often an idle connection checks that its ztunnel is still there. */
    private static final long IDLE_CHECK_MILLIS = 500;

    private final Path socketPath;
    private final Duration ackTimeout;
    private final CniMetrics metrics;
    /** Who may be a ztunnel: checked at accept (SO_PEERCRED), before anything is read or sent. */
    private final AllowedPeers peers;
    private final ScheduledExecutorService watchdog;
    private final Object lock = new Object();
    private final Map<String, Entry> desired = new LinkedHashMap<>();
    private final AtomicLong connections = new AtomicLong();
    private final CompletableFuture<Void> snapshotReady = new CompletableFuture<>();
    private final int maxConnections;
    /** Connections accepted and not yet finished (hello pending or served). */
    private final java.util.concurrent.atomic.AtomicInteger open = new java.util.concurrent.atomic.AtomicInteger();
    /** Ztunnels that said hello and get requests, in the order they did. Under the lock. */
    private final List<Connection> registered = new ArrayList<>();
    private ZdsServerSocket server;
    private volatile boolean closed;

    /** A pod the ztunnel must have; its netns stays open while a request may still carry it. */
    private static final class Entry {
        final String uid;
        final WorkloadInfo info;
        final NetworkNamespace netns;
        final CompletableFuture<Void> acked = new CompletableFuture<>();
        /** Served before this agent started: the next request for it is Keep (no fd), once. */
        boolean keep;
        int users;
        boolean removed;

        Entry(String uid, WorkloadInfo info, NetworkNamespace netns) {
            this.uid = uid;
            this.info = info;
            this.netns = netns;
        }

        String name() {
            return info.getNamespace() + "/" + info.getName() + " (" + uid + ")";
        }
    }

    private record Op(String type, WorkloadRequest request, Entry carries, CompletableFuture<Void> result,
            String what) {
    }

    public ZdsServer(Path socketPath, Duration ackTimeout, CniMetrics metrics, AllowedPeers peers) {
        this(socketPath, ackTimeout, metrics, peers, MAX_CONNECTIONS);
    }

    public ZdsServer(Path socketPath, Duration ackTimeout, CniMetrics metrics, AllowedPeers peers,
            int maxConnections) {
        this.maxConnections = maxConnections;
        this.peers = peers;
        this.socketPath = socketPath;
        this.ackTimeout = ackTimeout;
        this.metrics = metrics;
        ScheduledThreadPoolExecutor t = new ScheduledThreadPoolExecutor(1,
                Thread.ofPlatform().daemon().name("zds-watchdog").factory());
        t.setRemoveOnCancelPolicy(true);
        this.watchdog = t;
    }

    public void start() throws IOException {
        server = ZdsServerSocket.bind(socketPath);
        LOG.infof("ZDS listening on %s (ztunnels of uid %s)", socketPath, peers);
        Thread.ofPlatform().daemon().name("zds-accept").start(this::acceptLoop);
    }

    /**
     * The agent knows every pod it must enrol (first full listing reconciled). Until then a
     * connecting ztunnel waits: a snapshot sent too early would make it drop pods it still serves.
     */
    public void markSnapshotReady() {
        if (snapshotReady.complete(null)) {
            LOG.infof("ZDS: snapshot ready (%d pods)", workloads().size());
        }
    }

    public Path socketPath() {
        return socketPath;
    }

    private void acceptLoop() {
        while (!closed) {
            try {
                ZdsSocket s = server.accept();
                long id = connections.incrementAndGet();
                // Before a hello is read or anything sent, and before it takes one of the places: a
                // process that is not the ztunnel must get no netns and make no ztunnel Replaced.
                PeerCredentials peer;
                switch (peers.check(s)) {
                    case PeerCheck.Refused refused -> {
                        LOG.warnf("ZDS connection %d refused: %s", id, refused.detail());
                        metrics.zdsRefused(refused.reason());
                        s.close();
                        continue;
                    }
                    case PeerCheck.Admitted admitted -> peer = admitted.peer();
                }
                if (open.incrementAndGet() > maxConnections) {
                    open.decrementAndGet();
                    LOG.warnf("ZDS connection %d refused: %d connections are open already (at most %d: an old and"
                            + " a new ztunnel)", id, maxConnections, maxConnections);
                    metrics.zdsConnection("refused");
                    s.close();
                    continue;
                }
                Connection c = new Connection(s, id, peer);
                Thread.ofPlatform().daemon().name("zds-conn-" + c.id).start(c::run);
            } catch (IOException e) {
                if (!closed) {
                    LOG.errorf("ZDS accept on %s failed: %s", socketPath, e.getMessage());
                    sleep(200);
                }
            }
        }
    }

    /** A pod new to the ztunnel: see {@link #add(String, WorkloadInfo, NetworkNamespace, boolean)}. */
    public CompletableFuture<Void> add(String uid, WorkloadInfo info, NetworkNamespace netns) {
        return add(uid, info, netns, false);
    }

    /**
     * The ztunnel must proxy this pod: takes ownership of {@code netns}. The future completes with
     * the ztunnel's ack of the first Add that reaches it (it stays pending while no ztunnel is
     * connected; callers bound their wait). Adding a pod again with the same namespace is a no-op.
     *
     * @param servedBefore a ztunnel took this pod before this agent started (its rules are in
     *     place): the first request for it is Keep, and Add only if the ztunnel does not have it
     */
    public CompletableFuture<Void> add(String uid, WorkloadInfo info, NetworkNamespace netns, boolean servedBefore) {
        synchronized (lock) {
            Entry old = desired.get(uid);
            if (old != null) {
                if (old.netns.inode() == netns.inode()) {
                    netns.close();
                    return old.acked.copy();
                }
                LOG.infof("ZDS: %s has a new network namespace; replacing it", old.name());
                removeLocked(old);
            }
            Entry e = new Entry(uid, info, netns);
            e.keep = servedBefore;
            desired.put(uid, e);
            for (Connection c : registered) {
                c.enqueue(requestFor(e, c.relayTo(e)));
            }
            return e.acked.copy();
        }
    }

    /** The ztunnel must stop proxying this pod; completes when acked (at once if no ztunnel is connected). */
    public CompletableFuture<Void> del(String uid) {
        synchronized (lock) {
            Entry e = desired.get(uid);
            if (e == null) {
                return CompletableFuture.completedFuture(null);
            }
            return removeLocked(e);
        }
    }

    private CompletableFuture<Void> removeLocked(Entry e) {
        desired.remove(e.uid);
        e.removed = true;
        registered.forEach(c -> c.refused.remove(e.uid)); // gone: no reason to hold a hand-over for it
        e.acked.completeExceptionally(new ZdsRejected("removed before the ztunnel acknowledged it"));
        if (registered.isEmpty()) {
            // The next ztunnel to connect will not hear of it in the snapshot: nothing to send.
            releaseLocked(e, false);
            return CompletableFuture.completedFuture(null);
        }
        List<CompletableFuture<Void>> acks = new ArrayList<>();
        for (Connection c : registered) {
            CompletableFuture<Void> result = new CompletableFuture<>();
            e.users++;
            c.enqueue(new Op("del", WorkloadRequest.newBuilder()
                    .setDel(DelWorkload.newBuilder().setUid(e.uid)).build(), e, result, "Del " + e.name()));
            acks.add(result);
        }
        return CompletableFuture.allOf(acks.toArray(CompletableFuture[]::new));
    }

    /** Keep for a pod served before this agent started (once), else Add. Under the lock. */
    private Op requestFor(Entry e, CompletableFuture<Void> result) {
        if (!e.keep) {
            return addOp(e, result);
        }
        e.keep = false;
        e.users++;
        return new Op("keep", WorkloadRequest.newBuilder().setKeep(KeepWorkload.newBuilder().setUid(e.uid)).build(),
                e, result, "Keep " + e.name());
    }

    private Op addOp(Entry e, CompletableFuture<Void> result) {
        e.users++;
        return addRequest(e, result);
    }

    /**
     * An Add carrying the pod's netns; the caller holds a use of it. It says reply routing: every pod
     * this agent enrols gets it with its rules (InPodRedirection, once the Add is acked), so the
     * ztunnel may connect to the application from the client's address.
     */
    private static Op addRequest(Entry e, CompletableFuture<Void> result) {
        return new Op("add", WorkloadRequest.newBuilder().setAdd(AddWorkload.newBuilder().setUid(e.uid)
                .setWorkloadInfo(e.info).setReplyRouting(true)).build(), e, result, "Add " + e.name());
    }

    private void release(Entry e) {
        synchronized (lock) {
            releaseLocked(e, true);
        }
    }

    private void releaseLocked(Entry e, boolean used) {
        if (used) {
            e.users--;
        }
        if (e.removed && e.users == 0) {
            e.netns.close();
        }
    }

    public boolean connected() {
        synchronized (lock) {
            return !registered.isEmpty();
        }
    }

    /** The ztunnel connections served now (two during a hand-over). */
    public int connectedZtunnels() {
        synchronized (lock) {
            return registered.size();
        }
    }

    /** The instance that started last: the one that serves the pods once it has its snapshot. Under the lock. */
    private Connection currentLocked() {
        Connection newest = null;
        for (Connection c : registered) {
            if (newest == null || c.newerThan(newest)) {
                newest = c;
            }
        }
        return newest;
    }

    /**
     * A connection left (it may have held the ports): the Adds the others refused are sent again,
     * once each. Under the lock.
     */
    private void retryRefusedLocked() {
        for (Connection c : registered) {
            for (String uid : List.copyOf(c.refused)) {
                c.refused.remove(uid);
                Entry e = desired.get(uid);
                if (e != null) {
                    LOG.infof("ZDS: a ztunnel connection left; sending %s to connection %d again", e.name(), c.id);
                    c.enqueue(addOp(e, c.relayTo(e)));
                }
            }
            c.heldLogged = false;
        }
    }

    /**
     * Once the current instance has acked its snapshot and all that was queued for it since, every
     * older one is told Replaced (once). Called under the lock after each answer on any connection.
     */
    private void handOverLocked() {
        Connection current = currentLocked();
        if (current == null || !current.snapshotAcked || current.pending > 0) {
            return;
        }
        if (!current.refused.isEmpty()) {
            // It could not take some pod (e.g. an old instance without SO_REUSEPORT holds the ports):
            // the old ones keep serving; the Adds are sent again when one of them leaves.
            if (registered.size() > 1 && !current.heldLogged) {
                current.heldLogged = true;
                LOG.warnf("ZDS hand-over held: connection %d refused %s; the older connection(s) keep serving",
                        current.id, current.refused);
            }
            return;
        }
        for (Connection old : registered) {
            if (old != current && !old.replacing) {
                old.replacing = true;
                String reason = "connection " + current.id + " (a ztunnel started after this one) serves every pod";
                old.enqueue(new Op("replaced", WorkloadRequest.newBuilder()
                        .setReplaced(Replaced.newBuilder().setReason(reason)).build(), null,
                        new CompletableFuture<>(), "Replaced"));
                LOG.infof("ZDS hand-over: connection %d has every pod; telling connection %d it is replaced",
                        current.id, old.id);
            }
        }
    }

    /** The pods the ztunnel is meant to have. */
    public Set<String> workloads() {
        synchronized (lock) {
            return Set.copyOf(desired.keySet());
        }
    }

    @Override
    public void close() {
        List<Connection> conns;
        List<Entry> entries;
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
            conns = List.copyOf(registered);
            entries = new ArrayList<>(desired.values());
            desired.clear();
        }
        if (server != null) {
            server.close();
        }
        for (Connection c : conns) {
            c.close("agent shutting down");
        }
        for (Entry e : entries) {
            synchronized (lock) {
                e.removed = true;
                releaseLocked(e, false);
            }
        }
        watchdog.shutdownNow();
    }

    /** One ztunnel connection and its queue of requests; the thread that runs it owns the socket. */
    private final class Connection {
        final ZdsSocket socket;
        final long id;
        /** The process at the other end (SO_PEERCRED), for the log. */
        final PeerCredentials peer;
        final LinkedBlockingQueue<Op> queue = new LinkedBlockingQueue<>();
        volatile String closeReason;
        Thread thread;
        /** From its hello: when the instance started (0: unknown, older than any that says). */
        long startedMicros;
        /** Requests queued or in flight, under the lock. */
        int pending;
        /** Its SnapshotSent was acked, under the lock. */
        boolean snapshotAcked;
        /** Told (or about to be told) Replaced, under the lock. */
        boolean replacing;
        /** Said hello and got requests. */
        boolean served;
        /** Pods whose Add it refused (uids), under the lock: no hand-over to it while any is left. */
        final java.util.Set<String> refused = new java.util.LinkedHashSet<>();
        boolean heldLogged;

        Connection(ZdsSocket socket, long id, PeerCredentials peer) {
            this.socket = socket;
            this.id = id;
            this.peer = peer;
        }

        /** Under the lock. */
        void enqueue(Op op) {
            pending++;
            queue.add(op);
        }

        boolean newerThan(Connection other) {
            return startedMicros != other.startedMicros ? startedMicros > other.startedMicros : id > other.id;
        }

        /**
         * The future of this connection's answer to an Add of {@code e}: the pod is served once any
         * ztunnel has it; a refusal counts only from the current instance (an old one may be leaving).
         */
        CompletableFuture<Void> relayTo(Entry e) {
            CompletableFuture<Void> answer = new CompletableFuture<>();
            answer.whenComplete((v, failure) -> {
                if (failure == null) {
                    e.acked.complete(null);
                    return;
                }
                boolean fromCurrent;
                synchronized (lock) {
                    fromCurrent = currentLocked() == this;
                }
                if (fromCurrent) {
                    e.acked.completeExceptionally(failure);
                }
            });
            return answer;
        }

        void close(String reason) {
            closeReason = reason;
            socket.close();
            Thread t = thread;
            if (t != null) {
                t.interrupt();
            }
        }

        void run() {
            thread = Thread.currentThread();
            Op inFlight = null;
            try {
                ZdsPacket hello = receiveWithin(ackTimeout, "hello");
                ZdsHello h = ZdsHello.parseFrom(hello.payload());
                if (h.getVersion() != ZdsVersion.ZDS_V1) {
                    LOG.warnf("ZDS connection %d refused: hello with version %s, this agent speaks ZDS_V1", id,
                            h.getVersion());
                    metrics.zdsConnection("refused");
                    return;
                }
                if (!snapshotReady.isDone()) {
                    LOG.infof("ZDS connection %d: waiting until this agent has found its pods", id);
                    snapshotReady.get();
                }
                int replay;
                int others;
                synchronized (lock) {
                    if (closed) {
                        return;
                    }
                    startedMicros = h.getStartedUnixMicros();
                    others = registered.size();
                    registered.add(this);
                    served = true;
                    replay = desired.size();
                    for (Entry e : desired.values()) {
                        enqueue(requestFor(e, relayTo(e)));
                    }
                    // other_ztunnels is counted when it is sent (see exchange): an older instance that
                    // connected at the same time may say hello after this one.
                    enqueue(new Op("snapshot_sent", WorkloadRequest.newBuilder()
                            .setSnapshotSent(SnapshotSent.getDefaultInstance()).build(), null,
                            new CompletableFuture<>(), "SnapshotSent"));
                }
                metrics.zdsConnection("accepted");
                LOG.infof("ztunnel connected over ZDS (connection %d, %s, %s, started %d us); sending the snapshot of"
                        + " %d pods%s", id, peer, h.getVersion(), startedMicros, replay,
                        others == 0 ? "" : "; " + others + " other connection(s) served until the newest has it all");
                while (true) {
                    inFlight = queue.poll(IDLE_CHECK_MILLIS, TimeUnit.MILLISECONDS);
                    if (inFlight == null) {
                        // Nothing to send: notice a ztunnel that left meanwhile (its refused Adds go to another).
                        if (socket.peerClosed()) {
                            throw new EOFException("ZDS peer closed the connection");
                        }
                        continue;
                    }
                    exchange(inFlight);
                    inFlight = null;
                    synchronized (lock) {
                        pending--;
                        handOverLocked();
                    }
                }
            } catch (EOFException e) {
                LOG.infof("ZDS connection %d: the ztunnel disconnected", id);
            } catch (java.util.concurrent.ExecutionException e) {
                LOG.errorf("ZDS connection %d: %s", id, e.getMessage());
            } catch (ClosedChannelException | InterruptedException e) {
                LOG.infof("ZDS connection %d closed: %s", id, closeReason == null ? "closed" : closeReason);
            } catch (IOException e) {
                LOG.warnf("ZDS connection %d failed: %s", id, closeReason != null ? closeReason : e.getMessage());
            } catch (RuntimeException e) {
                LOG.errorf(e, "ZDS connection %d failed", id);
            } finally {
                List<Op> lost = new ArrayList<>();
                synchronized (lock) {
                    boolean wasCurrent = currentLocked() == this;
                    registered.remove(this);
                    if (inFlight != null) {
                        lost.add(inFlight);
                    }
                    queue.drainTo(lost);
                    pending = 0;
                    if (!closed) {
                        retryRefusedLocked();
                        if (wasCurrent) {
                            handOverLocked(); // a newer one leaving makes the next newest current
                        }
                    }
                }
                open.decrementAndGet();
                for (Op op : lost) {
                    finishLost(op);
                }
                socket.close();
                if (served) {
                    metrics.zdsConnection("closed");
                }
            }
        }

        private void exchange(Op op) throws IOException {
            if (op.type().equals("replaced")) {
                socket.send(op.request());
                String error = WorkloadResponse.parseFrom(receiveWithin(ackTimeout, "ack of Replaced").payload())
                        .getAck().getError();
                metrics.zdsHandOver(error.isEmpty() ? "ok" : "rejected");
                if (!error.isEmpty()) {
                    LOG.warnf("ZDS connection %d answered Replaced with an error (%s): closing it anyway", id, error);
                }
                op.result().complete(null);
                closeReason = "replaced: the newer ztunnel serves every pod";
                throw new ClosedChannelException(); // its pods are the new instance's; nothing more to say
            }
            if (op.carries() != null && op.type().equals("add")) {
                socket.send(op.request(), op.carries().netns.fd());
            } else if (op.type().equals("snapshot_sent")) {
                socket.send(WorkloadRequest.newBuilder().setSnapshotSent(SnapshotSent.newBuilder()
                        .setOtherZtunnels(olderServed())).build());
            } else {
                socket.send(op.request());
            }
            ZdsPacket p = receiveWithin(ackTimeout, "ack of " + op.what());
            WorkloadResponse r = WorkloadResponse.parseFrom(p.payload());
            if (!r.hasAck()) {
                throw new IOException("ZDS protocol error: answer to " + op.what() + " carries no ack");
            }
            String error = r.getAck().getError();
            if (!error.isEmpty() && op.type().equals("keep")) {
                // This ztunnel does not have the pod (it restarted too): hand it over, before anything else.
                metrics.zdsRequest(op.type(), "rejected");
                Entry e = op.carries();
                boolean removed;
                synchronized (lock) {
                    removed = e.removed;
                }
                if (removed) {
                    op.result().completeExceptionally(new ZdsRejected("removed before the ztunnel acknowledged it"));
                    release(e);
                    return;
                }
                LOG.infof("ZDS: the ztunnel does not have %s (%s); sending Add", e.name(), error);
                // The Add takes over the Keep's hold on the netns (released once, by whichever finishes).
                exchange(addRequest(e, op.result()));
                return;
            }
            if (error.isEmpty() && op.type().equals("snapshot_sent")) {
                synchronized (lock) {
                    snapshotAcked = true;
                }
            }
            if (op.type().equals("add")) {
                synchronized (lock) {
                    if (error.isEmpty()) {
                        refused.remove(op.carries().uid);
                    } else {
                        refused.add(op.carries().uid);
                    }
                }
            }
            if (error.isEmpty()) {
                LOG.infof("ZDS: %s acknowledged", op.what());
                metrics.zdsRequest(op.type(), "ok");
                op.result().complete(null);
            } else {
                LOG.warnf("ZDS: ztunnel refused %s: %s", op.what(), error);
                metrics.zdsRequest(op.type(), "rejected");
                op.result().completeExceptionally(new ZdsRejected("ztunnel refused " + op.what() + ": " + error));
            }
            if (op.carries() != null) {
                release(op.carries());
            }
        }

        /** The older instances served now: the ones this connection takes over from if it is the newest. */
        private int olderServed() {
            synchronized (lock) {
                return (int) registered.stream().filter(c -> c != this && newerThan(c)).count();
            }
        }

        /** An unanswered request: an Add is sent again with the next snapshot; a Del is implied by it. */
        private void finishLost(Op op) {
            metrics.zdsRequest(op.type(), "lost");
            if (op.type().equals("replaced") && !op.result().isDone()) {
                metrics.zdsHandOver("lost"); // no ack in time: it is closed all the same
            }
            if (op.type().equals("del") || op.type().equals("snapshot_sent")) {
                op.result().complete(null);
            }
            if (op.carries() != null) {
                release(op.carries());
            }
        }

        private ZdsPacket receiveWithin(Duration timeout, String what) throws IOException {
            ScheduledFuture<?> alarm = watchdog.schedule(
                    () -> close("no " + what + " within " + timeout.toMillis() + " ms"),
                    timeout.toMillis(), TimeUnit.MILLISECONDS);
            try {
                ZdsPacket p = socket.receive();
                p.fd().ifPresent(FileDescriptors::close); // the ztunnel never sends one; never leak it
                return p;
            } finally {
                alarm.cancel(false);
            }
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
