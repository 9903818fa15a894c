package dev.ambient.cni;

import dev.ambient.proto.zds.Ack;
import dev.ambient.proto.zds.WorkloadRequest;
import dev.ambient.proto.zds.WorkloadResponse;
import dev.ambient.proto.zds.ZdsHello;
import dev.ambient.proto.zds.ZdsVersion;
import dev.ambient.zds.FileDescriptors;
import dev.ambient.zds.ZdsPacket;
import dev.ambient.zds.ZdsSocket;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * The ztunnel's end of ZDS as the contract describes it, over the real transport: connect, hello,
 * then one ack per request. Either driven step by step ({@link #next()}, {@link #ack}) or left to
 * answer by itself ({@link #autoAck}), recording which pods (and netns inodes) it holds.
 */
public final class ZdsTestClient implements AutoCloseable {

    public record Received(WorkloadRequest request, OptionalInt fd, String netns) {
    }

    private final ZdsSocket socket;
    private final LinkedBlockingQueue<Received> received = new LinkedBlockingQueue<>();
    /** uid -> "net:[inode]" of the pods this client proxies (auto mode). */
    public final Map<String, String> workloads = new ConcurrentHashMap<>();
    public volatile int snapshots;
    /** Every request answered in auto mode, in order. */
    public final List<Received> seen = new CopyOnWriteArrayList<>();

    private ZdsTestClient(ZdsSocket socket) {
        this.socket = socket;
    }

    public static ZdsTestClient connect(Path path) throws IOException {
        return connect(path, 0);
    }

    /** A ztunnel instance that started at {@code startedMicros} (the newest one is current). */
    public static ZdsTestClient connect(Path path, long startedMicros) throws IOException {
        ZdsSocket s = ZdsSocket.connect(path);
        s.send(ZdsHello.newBuilder().setVersion(ZdsVersion.ZDS_V1).setStartedUnixMicros(startedMicros).build());
        return new ZdsTestClient(s);
    }

    public static ZdsTestClient connectRaw(Path path) throws IOException {
        return new ZdsTestClient(ZdsSocket.connect(path));
    }

    /** This ztunnel already serves these pods (uid -> "net:[inode]"), as one that outlived the agent does. */
    public ZdsTestClient holding(Map<String, String> pods) {
        workloads.putAll(pods);
        return this;
    }

    public ZdsSocket socket() {
        return socket;
    }

    /** The next request; its fd (if any) is described and closed. */
    public Received next() throws IOException {
        ZdsPacket p = socket.receive();
        String netns = null;
        if (p.fd().isPresent()) {
            netns = "net:[" + FileDescriptors.inode(p.fd().getAsInt()) + "]";
            FileDescriptors.close(p.fd().getAsInt());
        }
        return new Received(WorkloadRequest.parseFrom(p.payload()), p.fd(), netns);
    }

    public void ack(String error) throws IOException {
        socket.send(WorkloadResponse.newBuilder().setAck(Ack.newBuilder().setError(error)).build());
    }

    /** Answers every request on its own thread like the ztunnel would; {@code errors} may refuse one. */
    public ZdsTestClient autoAck(Function<WorkloadRequest, String> errors) {
        Map<String, String> sinceConnect = new ConcurrentHashMap<>();
        Thread.ofPlatform().daemon().name("zds-test-client").start(() -> {
            try {
                while (true) {
                    Received r = next();
                    received.add(r);
                    seen.add(r);
                    String error = errors.apply(r.request());
                    if (error.isEmpty() && r.request().hasKeep()
                            && !workloads.containsKey(r.request().getKeep().getUid())) {
                        error = "unknown workload uid " + r.request().getKeep().getUid();
                    }
                    switch (r.request().getPayloadCase()) {
                        case ADD -> {
                            if (error.isEmpty()) {
                                workloads.put(r.request().getAdd().getUid(), r.netns());
                                sinceConnect.put(r.request().getAdd().getUid(), r.netns());
                            }
                        }
                        case KEEP -> {
                            if (error.isEmpty()) {
                                sinceConnect.put(r.request().getKeep().getUid(),
                                        workloads.get(r.request().getKeep().getUid()));
                            }
                        }
                        case DEL -> workloads.remove(r.request().getDel().getUid());
                        case SNAPSHOT_SENT -> {
                            workloads.keySet().retainAll(sinceConnect.keySet());
                            snapshots++;
                        }
                        default -> {
                        }
                    }
                    ack(error);
                }
            } catch (IOException e) {
                // disconnected
            }
        });
        return this;
    }

    public Received poll(long seconds) throws InterruptedException {
        return received.poll(seconds, TimeUnit.SECONDS);
    }

    @Override
    public void close() {
        socket.close();
    }
}
