package dev.ambient.cni.zds;

import dev.ambient.cni.metrics.CniMetrics;
import dev.ambient.net.NetworkNamespace;
import dev.ambient.proto.zds.AddWorkload;
import dev.ambient.proto.zds.DelWorkload;
import dev.ambient.proto.zds.KeepWorkload;
import dev.ambient.proto.zds.SnapshotSent;
import dev.ambient.proto.zds.WorkloadInfo;
import dev.ambient.proto.zds.WorkloadRequest;
import dev.ambient.proto.zds.WorkloadResponse;
import dev.ambient.proto.zds.ZdsHello;
import dev.ambient.proto.zds.ZdsVersion;
import dev.ambient.zds.FileDescriptors;
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
 * network namespace) and brings a connected ztunnel in line with it: on every (re)connect, Add
 * for every pod then SnapshotSent (the ztunnel drops what was not named); afterwards each Add and
 * Del as it happens. One request at a time, each answered by one ack within {@code ackTimeout},
 * or the connection is dropped (the ztunnel reconnects and gets the whole snapshot again).
 *
 * <p>Blocking socket I/O runs on one platform thread per connection; callers only enqueue and get
 * a future of the ack. A newer connection replaces an older one (a restarted ztunnel).
 */
public final class ZdsServer implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(ZdsServer.class);

    private final Path socketPath;
    private final Duration ackTimeout;
    private final CniMetrics metrics;
    private final ScheduledExecutorService watchdog;
    private final Object lock = new Object();
    private final Map<String, Entry> desired = new LinkedHashMap<>();
    private final AtomicLong connections = new AtomicLong();
    private final CompletableFuture<Void> snapshotReady = new CompletableFuture<>();
    private Connection current;
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

    public ZdsServer(Path socketPath, Duration ackTimeout, CniMetrics metrics) {
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
        LOG.infof("ZDS listening on %s", socketPath);
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
                Connection c = new Connection(s, connections.incrementAndGet());
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
            if (current != null) {
                current.enqueue(requestFor(e, e.acked));
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
        e.acked.completeExceptionally(new ZdsRejected("removed before the ztunnel acknowledged it"));
        CompletableFuture<Void> result = new CompletableFuture<>();
        if (current != null) {
            e.users++;
            current.enqueue(new Op("del", WorkloadRequest.newBuilder()
                    .setDel(DelWorkload.newBuilder().setUid(e.uid)).build(), e, result, "Del " + e.name()));
        } else {
            // The next ztunnel to connect will not hear of it in the snapshot: nothing to send.
            result.complete(null);
            releaseLocked(e, false);
        }
        return result;
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

    /** An Add carrying the pod's netns; the caller holds a use of it. */
    private static Op addRequest(Entry e, CompletableFuture<Void> result) {
        return new Op("add", WorkloadRequest.newBuilder().setAdd(AddWorkload.newBuilder().setUid(e.uid)
                .setWorkloadInfo(e.info)).build(), e, result, "Add " + e.name());
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
            return current != null;
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
        Connection c;
        List<Entry> entries;
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
            c = current;
            entries = new ArrayList<>(desired.values());
            desired.clear();
        }
        if (server != null) {
            server.close();
        }
        if (c != null) {
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
        final LinkedBlockingQueue<Op> queue = new LinkedBlockingQueue<>();
        volatile String closeReason;
        Thread thread;

        Connection(ZdsSocket socket, long id) {
            this.socket = socket;
            this.id = id;
        }

        void enqueue(Op op) {
            queue.add(op);
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
            boolean registered = false;
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
                Connection old;
                int replay;
                synchronized (lock) {
                    if (closed) {
                        return;
                    }
                    if (current != null && current.id > id) {
                        // Two ztunnels said hello at once: the one that connected last is the live one.
                        LOG.infof("ZDS connection %d closed: connection %d, accepted after it, is already active",
                                id, current.id);
                        metrics.zdsConnection("refused");
                        return;
                    }
                    old = current;
                    current = this;
                    registered = true;
                    replay = desired.size();
                    for (Entry e : desired.values()) {
                        queue.add(requestFor(e, e.acked.isDone() ? new CompletableFuture<>() : e.acked));
                    }
                    queue.add(new Op("snapshot_sent", WorkloadRequest.newBuilder()
                            .setSnapshotSent(SnapshotSent.getDefaultInstance()).build(), null,
                            new CompletableFuture<>(), "SnapshotSent"));
                }
                if (old != null) {
                    old.close("replaced by connection " + id);
                }
                metrics.zdsConnection("accepted");
                LOG.infof("ztunnel connected over ZDS (connection %d, %s); sending the snapshot of %d pods", id,
                        h.getVersion(), replay);
                while (true) {
                    inFlight = queue.take();
                    exchange(inFlight);
                    inFlight = null;
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
                    if (registered && current == this) {
                        current = null;
                    }
                    if (inFlight != null) {
                        lost.add(inFlight);
                    }
                    queue.drainTo(lost);
                }
                for (Op op : lost) {
                    finishLost(op);
                }
                socket.close();
                if (registered) {
                    metrics.zdsConnection("closed");
                }
            }
        }

        private void exchange(Op op) throws IOException {
            if (op.carries() != null && op.type().equals("add")) {
                socket.send(op.request(), op.carries().netns.fd());
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

        /** An unanswered request: an Add is sent again with the next snapshot; a Del is implied by it. */
        private void finishLost(Op op) {
            metrics.zdsRequest(op.type(), "lost");
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
