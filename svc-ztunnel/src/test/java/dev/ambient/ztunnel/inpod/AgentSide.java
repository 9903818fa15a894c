package dev.ambient.ztunnel.inpod;

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
import dev.ambient.zds.FileDescriptors;
import dev.ambient.zds.ZdsPacket;
import dev.ambient.zds.ZdsServerSocket;
import dev.ambient.zds.ZdsSocket;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * The node agent's side of ZDS, played by the test over the real transport (a unix
 * SOCK_SEQPACKET socket with SCM_RIGHTS), since the agent itself is built elsewhere. Every call
 * has a timeout, so a ztunnel that does not answer fails the test instead of hanging it.
 */
final class AgentSide implements AutoCloseable {

    private final Path path;
    private ZdsServerSocket server;
    private ZdsSocket connection;
    /** The connection before the last {@link #acceptNewer()}: the instance being replaced. */
    private ZdsSocket previous;

    AgentSide(Path path) throws IOException {
        this.path = path;
        this.server = ZdsServerSocket.bind(path);
    }

    /** Waits for a second ztunnel (an upgrade) while the first stays connected; requests now go to the new one. */
    ZdsHello acceptNewer() throws Exception {
        previous = connection;
        return acceptZtunnel();
    }

    /** Tells the instance connected before the last {@link #acceptNewer()} that it is replaced; its ack's error. */
    String replacePrevious(String reason) throws Exception {
        String error = request(previous, WorkloadRequest.newBuilder()
                .setReplaced(Replaced.newBuilder().setReason(reason)).build(), -1);
        previous.close();
        previous = null;
        return error;
    }

    /** Waits for the ztunnel to connect and say hello. */
    ZdsHello acceptZtunnel() throws Exception {
        ZdsServerSocket s = server;
        connection = CompletableFuture.supplyAsync(() -> {
            try {
                return s.accept();
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }).get(15, TimeUnit.SECONDS);
        ZdsHello hello = ZdsHello.parseFrom(receive().payload());
        if (hello.getVersion() != ZdsVersion.ZDS_V1) {
            throw new AssertionError("ztunnel said hello with " + hello.getVersion());
        }
        return hello;
    }

    /** An Add as today's agent sends it: it installs the pod's reply routing. */
    String add(String uid, String namespace, String name, String serviceAccount, Path netns) throws Exception {
        return add(uid, namespace, name, serviceAccount, netns, true);
    }

    /** An Add from an agent older than reply routing: {@code reply_routing} unset. */
    String addFromOldAgent(String uid, String namespace, String name, String serviceAccount, Path netns)
            throws Exception {
        return add(uid, namespace, name, serviceAccount, netns, false);
    }

    private String add(String uid, String namespace, String name, String serviceAccount, Path netns,
            boolean replyRouting) throws Exception {
        int fd = FileDescriptors.openReadOnly(netns);
        try {
            return request(WorkloadRequest.newBuilder().setAdd(AddWorkload.newBuilder().setUid(uid)
                    .setWorkloadInfo(WorkloadInfo.newBuilder().setName(name).setNamespace(namespace)
                            .setServiceAccount(serviceAccount)).setReplyRouting(replyRouting)).build(), fd);
        } finally {
            FileDescriptors.close(fd); // the receiver got its own copy
        }
    }

    /** An Add whose attached fd is any file, e.g. not a network namespace. */
    String addWithFile(String uid, String name, Path file) throws Exception {
        int fd = FileDescriptors.openReadOnly(file);
        try {
            return request(WorkloadRequest.newBuilder().setAdd(AddWorkload.newBuilder().setUid(uid)
                    .setWorkloadInfo(WorkloadInfo.newBuilder().setName(name).setNamespace("shop"))).build(), fd);
        } finally {
            FileDescriptors.close(fd);
        }
    }

    String addWithoutFd(String uid) throws Exception {
        return request(WorkloadRequest.newBuilder().setAdd(AddWorkload.newBuilder().setUid(uid)
                .setWorkloadInfo(WorkloadInfo.newBuilder().setName("nofd").setNamespace("shop"))).build(), -1);
    }

    String keep(String uid) throws Exception {
        return request(WorkloadRequest.newBuilder().setKeep(KeepWorkload.newBuilder().setUid(uid)).build(), -1);
    }

    String del(String uid) throws Exception {
        return request(WorkloadRequest.newBuilder().setDel(DelWorkload.newBuilder().setUid(uid)).build(), -1);
    }

    String snapshotSent() throws Exception {
        return snapshotSent(0);
    }

    /** SnapshotSent saying how many other ztunnels the agent serves (a hand-over when this one is newer). */
    String snapshotSent(int otherZtunnels) throws Exception {
        return request(WorkloadRequest.newBuilder().setSnapshotSent(SnapshotSent.newBuilder()
                .setOtherZtunnels(otherZtunnels)).build(), -1);
    }

    /** Sends one request and returns the ack's error ("" = success). */
    private String request(WorkloadRequest request, int fd) throws Exception {
        return request(connection, request, fd);
    }

    private static String request(ZdsSocket connection, WorkloadRequest request, int fd) throws Exception {
        if (fd >= 0) {
            connection.send(request, fd);
        } else {
            connection.send(request);
        }
        WorkloadResponse response = WorkloadResponse.parseFrom(receive(connection).payload());
        if (!response.hasAck()) {
            throw new AssertionError("expected an ack, got " + response);
        }
        return response.getAck().getError();
    }

    private ZdsPacket receive() throws Exception {
        return receive(connection);
    }

    private static ZdsPacket receive(ZdsSocket c) throws Exception {
        return CompletableFuture.supplyAsync(() -> {
            try {
                return c.receive();
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }).get(20, TimeUnit.SECONDS);
    }

    /** An agent restart: its connection and listening socket go away, and a new agent binds again. */
    void restart() throws IOException {
        close();
        server = ZdsServerSocket.bind(path);
    }

    @Override
    public void close() {
        if (previous != null) {
            previous.close();
            previous = null;
        }
        if (connection != null) {
            connection.close();
            connection = null;
        }
        if (server != null) {
            server.close();
            server = null;
        }
    }
}
