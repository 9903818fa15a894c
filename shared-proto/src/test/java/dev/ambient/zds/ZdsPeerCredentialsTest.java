package dev.ambient.zds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ambient.proto.zds.Ack;
import dev.ambient.proto.zds.AddWorkload;
import dev.ambient.proto.zds.WorkloadRequest;
import dev.ambient.proto.zds.WorkloadResponse;
import dev.ambient.proto.zds.ZdsHello;
import dev.ambient.proto.zds.ZdsVersion;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** SO_PEERCRED on both ends of a ZDS connection, and where the socket may live. Root: another uid connects. */
@Timeout(30)
class ZdsPeerCredentialsTest {

    static final byte[] HELLO = ZdsHello.newBuilder().setVersion(ZdsVersion.ZDS_V1).build().toByteArray();
    static final byte[] ACK = WorkloadResponse.newBuilder().setAck(Ack.getDefaultInstance()).build().toByteArray();

    @TempDir
    Path dir;

    @Test
    void theAgentSeesWhoConnectedAndTheZtunnelWhoListens() throws Exception {
        Path path = dir.resolve("z.sock");
        try (ZdsServerSocket server = ZdsServerSocket.bind(path); ZdsSocket client = ZdsSocket.connect(path);
                ZdsSocket agent = server.accept()) {
            PeerCredentials self = new PeerCredentials((int) ProcessHandle.current().pid(), UnixSeqpacket.geteuid(),
                    agent.peerCredentials().gid());
            assertEquals(self, agent.peerCredentials());
            assertEquals(self, client.peerCredentials());
            assertInstanceOf(PeerCheck.Admitted.class, new AllowedPeers(Set.of(self.uid())).check(agent));
        }
    }

    @Test
    void aProcessOfAnotherUidIsNamedAndRefusedWhateverItSays() throws Exception {
        assumeTrue(OtherUidPeer.available(), "needs root, setpriv and /usr/bin/python3");
        Path path = dir.resolve("z.sock");
        try (ZdsServerSocket server = ZdsServerSocket.bind(path);
                OtherUidPeer peer = OtherUidPeer.client(path, HELLO, ACK, Duration.ofSeconds(3));
                ZdsSocket fromPeer = server.accept()) {
            PeerCredentials who = fromPeer.peerCredentials();
            assertEquals(new PeerCredentials((int) peer.pid(), OtherUidPeer.UID, OtherUidPeer.UID), who,
                    "setpriv execs python: same pid");
            PeerCheck check = AllowedPeers.rootOnly().check(fromPeer);
            PeerCheck.Refused refused = assertInstanceOf(PeerCheck.Refused.class, check);
            assertEquals("uid", refused.reason());
            assertTrue(refused.detail().contains("uid 65534") && refused.detail().contains("pid " + peer.pid()),
                    refused.detail());
            assertInstanceOf(PeerCheck.Admitted.class, AllowedPeers.of(Set.of(0L, OtherUidPeer.UID)).check(fromPeer));
        }
    }

    @Test
    void aZtunnelSeesTheUidOfWhatListensAtThePath() throws Exception {
        assumeTrue(OtherUidPeer.available(), "needs root, setpriv and /usr/bin/python3");
        Path path = dir.resolve("z.sock");
        byte[] add = WorkloadRequest.newBuilder().setAdd(AddWorkload.newBuilder().setUid("u")).build().toByteArray();
        try (OtherUidPeer impostor = OtherUidPeer.server(path, add, Path.of("/proc/self/ns/net"), 1,
                Duration.ofSeconds(5))) {
            impostor.await("listening=true");
            try (ZdsSocket z = ZdsSocket.connect(path)) {
                assertEquals(OtherUidPeer.UID, z.peerCredentials().uid());
                assertEquals("uid", assertInstanceOf(PeerCheck.Refused.class, AllowedPeers.rootOnly().check(z)).reason());
            }
            Map<String, String> report = impostor.report();
            assertEquals("1", report.get("accepted"), report.get("output"));
            assertEquals("0", report.get("hellos"), "we said nothing: " + report.get("output"));
        }
    }

    @Test
    void noUidAllowedIsAConfigurationError() {
        assertThrows(IllegalArgumentException.class, () -> AllowedPeers.of(Set.of()));
    }

    @Test
    void theSocketIsNotPutInADirectoryOthersCanWrite() throws Exception {
        Path open = Files.createDirectory(dir.resolve("open"));
        Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rwxrwxrwx"));
        IOException e = assertThrows(IOException.class, () -> ZdsServerSocket.bind(open.resolve("z.sock")));
        assertTrue(e.getMessage().contains("world-writable"), e.getMessage());
        assertTrue(Files.notExists(open.resolve("z.sock")));

        Path sticky = Files.createDirectory(dir.resolve("sticky"));
        Files.setAttribute(sticky, "unix:mode", 01777); // like /tmp: others may still squat a name
        assertThrows(IOException.class, () -> ZdsServerSocket.bind(sticky.resolve("z.sock")));

        Path someoneElses = Files.createDirectory(dir.resolve("theirs"));
        Files.setAttribute(someoneElses, "unix:uid", (int) OtherUidPeer.UID);
        e = assertThrows(IOException.class, () -> ZdsServerSocket.bind(someoneElses.resolve("z.sock")));
        assertTrue(e.getMessage().contains("belongs to uid 65534"), e.getMessage());

        // Created by the agent: 0755 under umask 022, and the socket file 0600.
        Path created = dir.resolve("made/by/agent/z.sock");
        try (ZdsServerSocket ok = ZdsServerSocket.bind(created)) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(created)));
            int mode = (Integer) Files.getAttribute(created.getParent(), "unix:mode");
            assertEquals(0, mode & 0022, "not writable by group or others: " + Integer.toOctalString(mode));
        }
    }
}
