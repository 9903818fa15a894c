package dev.ambient.zds;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.proto.zds.AddWorkload;
import dev.ambient.proto.zds.WorkloadInfo;
import dev.ambient.proto.zds.WorkloadRequest;
import dev.ambient.proto.zds.ZdsHello;
import dev.ambient.proto.zds.ZdsVersion;
import java.io.EOFException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(20)
class ZdsSocketTest {

    @TempDir
    Path dir;

    @Test
    void messagesKeepTheirBoundariesAndAnFdCrossesAsScmRights() throws Exception {
        Path path = dir.resolve("sub/ztunnel.sock");
        try (ZdsServerSocket server = ZdsServerSocket.bind(path)) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(path)));
            CompletableFuture<ZdsSocket> accepted = new CompletableFuture<>();
            Thread.ofPlatform().daemon().start(() -> {
                try {
                    accepted.complete(server.accept());
                } catch (IOException e) {
                    accepted.completeExceptionally(e);
                }
            });
            try (ZdsSocket client = ZdsSocket.connect(path); ZdsSocket agent = accepted.get(5, TimeUnit.SECONDS)) {
                ZdsHello hello = ZdsHello.newBuilder().setVersion(ZdsVersion.ZDS_V1).build();
                client.send(hello);
                client.send(hello);
                ZdsPacket p1 = agent.receive();
                assertArrayEquals(hello.toByteArray(), p1.payload());
                assertTrue(p1.fd().isEmpty());
                assertEquals(ZdsVersion.ZDS_V1, ZdsHello.parseFrom(agent.receive().payload()).getVersion());

                WorkloadRequest add = WorkloadRequest.newBuilder().setAdd(AddWorkload.newBuilder().setUid("u1")
                        .setWorkloadInfo(WorkloadInfo.newBuilder().setName("p").setNamespace("ns"))).build();
                int netns = FileDescriptors.openReadOnly(Path.of("/proc/self/ns/net"));
                try {
                    agent.send(add, netns);
                } finally {
                    FileDescriptors.close(netns); // the sender keeps ownership; the kernel passed a copy
                }
                ZdsPacket got = client.receive();
                assertEquals("u1", WorkloadRequest.parseFrom(got.payload()).getAdd().getUid());
                assertTrue(got.fd().isPresent());
                int received = got.fd().getAsInt();
                try {
                    assertEquals(Files.getAttribute(Path.of("/proc/self/ns/net"), "unix:ino"),
                            FileDescriptors.inode(received));
                } finally {
                    FileDescriptors.close(received);
                }

                agent.close();
                assertThrows(EOFException.class, client::receive);
            }
        }
        assertTrue(Files.notExists(path), "close removes the socket file");
    }

    @Test
    void closeWakesABlockedReceiveAndABlockedAccept() throws Exception {
        Path path = dir.resolve("z.sock");
        ZdsServerSocket server = ZdsServerSocket.bind(path);
        ZdsSocket client = ZdsSocket.connect(path);
        ZdsSocket agent = server.accept();
        CompletableFuture<Throwable> secondAccept = failureOf(server::accept);
        CompletableFuture<Throwable> receiveOutcome = failureOf(client::receive);
        Thread.sleep(300);
        assertTrue(!secondAccept.isDone() && !receiveOutcome.isDone(), "both calls block");
        client.close();
        client.close();
        assertTrue(receiveOutcome.get(5, TimeUnit.SECONDS) instanceof IOException);
        server.close();
        assertTrue(secondAccept.get(5, TimeUnit.SECONDS) instanceof IOException);
        assertThrows(IOException.class, () -> client.send(ZdsHello.newBuilder().setVersion(ZdsVersion.ZDS_V1).build()));
        assertThrows(EOFException.class, agent::receive);
        agent.close();
    }

    @Test
    void peerClosedTellsAnIdlePeerFromAGoneOneWithoutReading() throws Exception {
        Path path = dir.resolve("p.sock");
        try (ZdsServerSocket server = ZdsServerSocket.bind(path)) {
            ZdsSocket client = ZdsSocket.connect(path);
            try (ZdsSocket agent = server.accept()) {
                assertFalse(agent.peerClosed(), "connected, nothing sent");
                client.send(ZdsHello.newBuilder().setVersion(ZdsVersion.ZDS_V1).build());
                assertFalse(agent.peerClosed(), "a packet waiting");
                assertEquals(ZdsVersion.ZDS_V1, ZdsHello.parseFrom(agent.receive().payload()).getVersion(),
                        "and it was not consumed");
                client.close();
                assertTrue(agent.peerClosed(), "the peer left");
            }
        }
    }

    @Test
    void aStaleSocketFileIsReplacedButNotARegularFile() throws Exception {
        Path path = dir.resolve("stale.sock");
        ZdsServerSocket first = ZdsServerSocket.bind(path);
        // Simulate a crash: the file stays behind.
        Path keep = dir.resolve("kept.sock");
        Files.createLink(keep, path);
        first.close();
        Files.move(keep, path);
        try (ZdsServerSocket second = ZdsServerSocket.bind(path); ZdsSocket c = ZdsSocket.connect(path)) {
            assertTrue(Files.exists(path));
        }
        Path regular = dir.resolve("regular");
        Files.writeString(regular, "data");
        IOException e = assertThrows(IOException.class, () -> ZdsServerSocket.bind(regular));
        assertTrue(e.getMessage().contains("not a socket"), e.getMessage());
        assertEquals("data", Files.readString(regular));
        assertThrows(IOException.class, () -> ZdsSocket.connect(dir.resolve("nobody.sock")));
    }

    interface Call {
        Object run() throws Exception;
    }

    private static CompletableFuture<Throwable> failureOf(Call call) {
        // Platform threads: the blocking calls must not wait for a free pool worker.
        CompletableFuture<Throwable> outcome = new CompletableFuture<>();
        Thread.ofPlatform().daemon().start(() -> {
            try {
                call.run();
                outcome.complete(null);
            } catch (Throwable t) {
                outcome.complete(t);
            }
        });
        return outcome;
    }
}
