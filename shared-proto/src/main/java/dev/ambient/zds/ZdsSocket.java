package dev.ambient.zds;

import com.google.protobuf.MessageLite;
import java.io.EOFException;
import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.nio.file.Path;
import java.util.OptionalInt;

/**
 * One end of a ZDS connection: a unix SOCK_SEQPACKET socket carrying one protobuf message per
 * packet, optionally with one file descriptor as SCM_RIGHTS (the pod's network namespace on an
 * Add). Packets keep their boundaries, so no length prefix is needed. Blocking: use it from a
 * dedicated thread, never an event loop. One thread may send while another receives.
 */
public final class ZdsSocket implements AutoCloseable {

    /** Far above any ZDS message; a larger packet is a protocol error, not a reason to grow. */
    public static final int MAX_PACKET = 64 * 1024;

    private final SocketFd fd;
    private final Object sendLock = new Object();

    ZdsSocket(int fd) {
        this.fd = new SocketFd(fd);
    }

    public static ZdsSocket connect(Path path) throws IOException {
        int fd = UnixSeqpacket.socket();
        try {
            UnixSeqpacket.connect(fd, path);
            return new ZdsSocket(fd);
        } catch (IOException | RuntimeException e) {
            UnixSeqpacket.close(fd);
            throw e;
        }
    }

    public void send(MessageLite message) throws IOException {
        send(message, -1);
    }

    /** Sends {@code message} with {@code fd} as SCM_RIGHTS; the caller keeps ownership of its fd. */
    public void send(MessageLite message, int fdToPass) throws IOException {
        byte[] payload = message.toByteArray();
        if (payload.length == 0) {
            // A zero-length packet reads as end-of-stream on the other side.
            throw new IllegalArgumentException("empty ZDS message: " + message.getClass().getSimpleName());
        }
        if (payload.length > MAX_PACKET) {
            throw new IOException("ZDS message of " + payload.length + " bytes exceeds " + MAX_PACKET);
        }
        int s = fd.acquire();
        try {
            synchronized (sendLock) {
                UnixSeqpacket.send(s, payload, fdToPass);
            }
        } finally {
            fd.release();
        }
    }

    /**
     * Blocks for the next packet. The peer closing gives {@link EOFException}; {@link #close()}
     * from another thread gives {@link ClosedChannelException}.
     */
    public ZdsPacket receive() throws IOException {
        int s = fd.acquire();
        UnixSeqpacket.Received r;
        try {
            r = UnixSeqpacket.receive(s, MAX_PACKET);
        } finally {
            fd.release();
        }
        int[] fds = r.fds();
        if (r.length() == 0 && fds.length == 0) {
            if (fd.isClosed()) {
                throw new ClosedChannelException();
            }
            throw new EOFException("ZDS peer closed the connection");
        }
        if ((r.flags() & (UnixSeqpacket.MSG_TRUNC | UnixSeqpacket.MSG_CTRUNC)) != 0 || fds.length > 1) {
            for (int f : fds) {
                UnixSeqpacket.close(f);
            }
            throw new IOException("malformed ZDS packet: " + r.length() + " bytes, " + fds.length
                    + " fds, flags 0x" + Integer.toHexString(r.flags()) + " (max " + MAX_PACKET
                    + " bytes and one fd)");
        }
        return new ZdsPacket(r.payload(), fds.length == 1 ? OptionalInt.of(fds[0]) : OptionalInt.empty());
    }

    /**
     * Whether the peer has gone, checked without blocking or reading: for a side that sends
     * requests and reads only answers, to notice a peer that left while it had nothing to say.
     */
    public boolean peerClosed() throws IOException {
        if (fd.isClosed()) {
            return true;
        }
        int s = fd.acquire();
        try {
            return UnixSeqpacket.peerClosed(s);
        } finally {
            fd.release();
        }
    }

    /**
     * Who is at the other end (SO_PEERCRED), as the kernel recorded it at connect/listen time; see
     * {@link AllowedPeers}.
     */
    public PeerCredentials peerCredentials() throws IOException {
        int s = fd.acquire();
        try {
            return UnixSeqpacket.peerCredentials(s);
        } finally {
            fd.release();
        }
    }

    /** Idempotent; wakes a thread blocked in {@link #receive()}. */
    @Override
    public void close() {
        fd.close();
    }
}
