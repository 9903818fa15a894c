package dev.ambient.ztunnel.inpod;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.ambient.proto.zds.Ack;
import dev.ambient.proto.zds.WorkloadRequest;
import dev.ambient.proto.zds.WorkloadResponse;
import dev.ambient.proto.zds.ZdsHello;
import dev.ambient.proto.zds.ZdsVersion;
import dev.ambient.zds.AllowedPeers;
import dev.ambient.zds.FileDescriptors;
import dev.ambient.zds.PeerCheck;
import dev.ambient.zds.ZdsPacket;
import dev.ambient.zds.ZdsSocket;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import org.jboss.logging.Logger;

/**
 * The ztunnel's end of ZDS, on its own platform thread (the socket blocks, and Adds enter pod
 * namespaces): connects to the node agent, says hello, then answers every request with exactly
 * one ack, in order. A broken connection is retried with exponential backoff and jitter; after
 * each (re)connect the agent replays its pods and sends SnapshotSent, and pods it did not name
 * are dropped.
 *
 * <p>Before it says or reads anything on a connection, it asks the kernel who listens
 * (SO_PEERCRED): a server whose uid is not an allowed agent's is not believed (it would choose the
 * namespaces this ztunnel serves pods' certificates in); it is left, logged, and tried again later as
 * when no agent listens.
 *
 * <p>Hand-over: the hello says when this instance started, so the agent knows the newest one. A
 * Replaced request means a newer instance serves every pod: this one acks, stops accepting in every
 * pod, drains up to the drain timeout ({@link #handedOver()} completes then) and never reconnects.
 */
public final class ZdsClient implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(ZdsClient.class);

    private final Path socketPath;
    /** The uids the node agent may run as. */
    private final AllowedPeers agents;
    private final InpodWorkloads workloads;
    private final Duration initialBackoff;
    private final Duration maxBackoff;
    private final MeterRegistry registry;
    private final Thread thread;
    private final AtomicLong connections = new AtomicLong();
    private volatile boolean closed;
    private volatile ZdsSocket socket;
    private volatile boolean connected;
    private volatile boolean snapshotReceived;
    /** Sticky: the agent's pods were known once; a later agent restart does not make us unready. */
    private volatile boolean everSynced;
    private volatile String lastError = "";
    /** When this instance started, for the agent to tell the newest ztunnel on the node. */
    private final long startedMicros;
    /** A newer ztunnel took over: no reconnect. */
    private volatile boolean replaced;
    private final java.util.concurrent.CompletableFuture<Void> handedOver = new java.util.concurrent.CompletableFuture<>();

    public ZdsClient(Path socketPath, AllowedPeers agents, InpodWorkloads workloads, Duration initialBackoff,
            Duration maxBackoff, MeterRegistry registry) {
        this.socketPath = socketPath;
        this.agents = agents;
        this.workloads = workloads;
        this.initialBackoff = initialBackoff;
        this.maxBackoff = maxBackoff;
        this.registry = registry;
        java.time.Instant now = java.time.Instant.now();
        this.startedMicros = now.getEpochSecond() * 1_000_000 + now.getNano() / 1_000;
        this.thread = new Thread(this::run, "ztunnel-zds");
        this.thread.setDaemon(true);
    }

    public ZdsClient start() {
        thread.start();
        return this;
    }

    private void run() {
        long backoff = initialBackoff.toMillis();
        while (!closed && !replaced) {
            try (ZdsSocket s = ZdsSocket.connect(socketPath)) {
                socket = s;
                if (closed) {
                    return;
                }
                switch (agents.check(s)) {
                    case PeerCheck.Refused refused -> refuse(refused, backoff);
                    case PeerCheck.Admitted agent -> {
                        s.send(ZdsHello.newBuilder().setVersion(ZdsVersion.ZDS_V1).setStartedUnixMicros(startedMicros)
                                .build());
                        connected = true;
                        connections.incrementAndGet();
                        backoff = initialBackoff.toMillis();
                        LOG.infof("zds: connected to the node agent at %s (%s); waiting for its snapshot", socketPath,
                                agent.peer());
                        serve(s);
                        if (replaced) {
                            return;
                        }
                    }
                }
            } catch (IOException e) {
                if (closed) {
                    return;
                }
                lastError = e.getMessage();
                LOG.infof("zds: %s %s: %s; retrying in %d ms", connected ? "lost the node agent at" : "cannot reach",
                        socketPath, e.getMessage(), backoff);
            } catch (RuntimeException e) {
                lastError = String.valueOf(e);
                LOG.errorf(e, "zds: unexpected failure; reconnecting in %d ms", backoff);
            } finally {
                connected = false;
                snapshotReceived = false;
                socket = null;
            }
            sleep(backoff + ThreadLocalRandom.current().nextLong(backoff / 4 + 1));
            backoff = Math.min(backoff * 2, maxBackoff.toMillis());
        }
    }

    /** Not the node agent: nothing is said or read; the caller closes and tries again after {@code backoff}. */
    private void refuse(PeerCheck.Refused refused, long backoff) {
        lastError = "not the node agent at " + socketPath + ": " + refused.detail();
        LOG.warnf("zds: refusing the ZDS server at %s: %s; disconnected, retrying in %d ms", socketPath,
                refused.detail(), backoff);
        Counter.builder("ztunnel_zds_refused_total")
                .description("ZDS servers left at once for who they are (SO_PEERCRED): not an allowed node agent")
                .tag("reason", refused.reason()).register(registry).increment();
    }

    /** One connection: requests until it breaks. */
    private void serve(ZdsSocket s) throws IOException {
        Set<String> named = new HashSet<>();
        boolean snapshotDone = false;
        while (!closed && !replaced) {
            ZdsPacket packet = s.receive();
            int fd = packet.fd().orElse(-1);
            WorkloadRequest request;
            try {
                request = WorkloadRequest.parseFrom(packet.payload());
            } catch (InvalidProtocolBufferException e) {
                FileDescriptors.close(fd);
                ack(s, "unknown", "malformed WorkloadRequest: " + e.getMessage());
                continue;
            }
            String error;
            String type;
            String replacedBecause = null;
            switch (request.getPayloadCase()) {
                case ADD -> {
                    type = "add";
                    var add = request.getAdd();
                    if (fd < 0) {
                        error = "Add of " + add.getUid() + " carries no network namespace fd";
                    } else {
                        error = workloads.add(add.getUid(), add.getWorkloadInfo(), fd, add.getReplyRouting());
                        fd = -1; // owned (and closed on failure) by add
                    }
                    if (error.isEmpty() && !snapshotDone) {
                        named.add(add.getUid());
                    }
                }
                case KEEP -> {
                    type = "keep";
                    error = workloads.keep(request.getKeep().getUid());
                    if (error.isEmpty() && !snapshotDone) {
                        named.add(request.getKeep().getUid());
                    }
                }
                case DEL -> {
                    type = "del";
                    error = workloads.del(request.getDel().getUid());
                    named.remove(request.getDel().getUid());
                }
                case SNAPSHOT_SENT -> {
                    type = "snapshot_sent";
                    int others = request.getSnapshotSent().getOtherZtunnels();
                    if (others > 0) {
                        LOG.infof("zds: taking over from %d older ztunnel(s): they stop accepting once this"
                                + " snapshot is acked", others);
                        handOvers("new");
                    }
                    var dropped = workloads.retainOnly(named);
                    snapshotDone = true;
                    snapshotReceived = true;
                    everSynced = true;
                    LOG.infof("zds: snapshot complete: %d pod(s) enrolled, %d dropped as stale %s",
                            workloads.running(), dropped.size(), dropped);
                    error = "";
                }
                case REPLACED -> {
                    type = "replaced";
                    error = "";
                    replacedBecause = request.getReplaced().getReason();
                }
                default -> {
                    type = "unknown";
                    error = "unknown WorkloadRequest (payload " + request.getPayloadCase() + ")";
                }
            }
            FileDescriptors.close(fd); // an fd beside anything but an Add is not ours to keep
            ack(s, type, error);
            if (replacedBecause != null) {
                handOver(replacedBecause);
            }
        }
    }

    /** After the ack of Replaced: every pod's listeners close now, their connections drain. */
    private void handOver(String reason) {
        replaced = true;
        handOvers("old");
        LOG.infof("zds: replaced by a newer ztunnel (%s): no longer accepting in any pod; draining", reason);
        workloads.handOver().whenComplete((v, e) -> {
            LOG.infof("zds: hand-over drained: this ztunnel serves nothing any more");
            handedOver.complete(null);
        });
    }

    private void handOvers(String role) {
        Counter.builder("ztunnel_inpod_handovers")
                .description("Hand-overs between ztunnel instances on this node, by this instance's role (old|new)")
                .tag("role", role).register(registry).increment();
    }

    /** Completes once a newer ztunnel replaced this one and every connection drained (or hit the deadline). */
    public java.util.concurrent.CompletableFuture<Void> handedOver() {
        return handedOver.copy();
    }

    /** True once a newer ztunnel replaced this one (it drains, then serves nothing). */
    public boolean replaced() {
        return replaced;
    }

    private void ack(ZdsSocket s, String type, String error) throws IOException {
        Counter.builder("ztunnel_zds_requests_total").description("ZDS requests from the node agent, by type and result")
                .tag("type", type).tag("result", error.isEmpty() ? "ok" : "error").register(registry).increment();
        if (!error.isEmpty()) {
            lastError = error;
        }
        s.send(WorkloadResponse.newBuilder().setAck(Ack.newBuilder().setError(error)).build());
    }

    private void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            closed = true;
        }
    }

    public boolean connected() {
        return connected;
    }

    /** True once the agent's snapshot on the current connection is complete. */
    public boolean snapshotReceived() {
        return snapshotReceived;
    }

    /** True once any connection completed a snapshot (readiness: pods present at start are served). */
    public boolean everSynced() {
        return everSynced;
    }

    public long connections() {
        return connections.get();
    }

    public String lastError() {
        return lastError;
    }

    public Path socketPath() {
        return socketPath;
    }

    @Override
    public void close() {
        closed = true;
        ZdsSocket s = socket;
        if (s != null) {
            s.close();
        }
        thread.interrupt();
        try {
            thread.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
