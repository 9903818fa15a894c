package dev.ambient.zds;

import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * The listening end of ZDS (the node agent binds, the ztunnel connects). The socket file is
 * mode 0600: whoever can connect may be handed pod network namespaces. Its directory must be
 * writable by nobody but root and this process's user: whoever can write there can put their own
 * socket in its place, and every ztunnel that connects then talks to them. Who connected is still
 * checked ({@link AllowedPeers}): the mode does not stop a process with CAP_DAC_OVERRIDE.
 */
public final class ZdsServerSocket implements AutoCloseable {

    private final SocketFd fd;
    private final Path path;

    private ZdsServerSocket(int fd, Path path) {
        this.fd = new SocketFd(fd);
        this.path = path;
    }

    /** Removes a stale socket file, creates parent directories, binds and listens. */
    public static ZdsServerSocket bind(Path path) throws IOException {
        Path parent = path.toAbsolutePath().getParent();
        if (parent != null) {
            // rwxr-xr-x: only we may add or replace names in it (the umask may take more, never add).
            Files.createDirectories(parent, PosixFilePermissions.asFileAttribute(
                    PosixFilePermissions.fromString("rwxr-xr-x")));
            requireSafeDirectory(parent);
        }
        if (Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            if (!isSocket(path)) {
                throw new IOException("refusing to replace " + path + ": it exists and is not a socket");
            }
            // Left by a previous agent; a unix socket's name cannot be re-bound until removed.
            Files.delete(path);
        }
        int s = UnixSeqpacket.socket();
        try {
            UnixSeqpacket.bind(s, path);
            // Before listen(), so no one connects while the file is still world-accessible.
            Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rw-------"));
            UnixSeqpacket.listen(s, 16);
            return new ZdsServerSocket(s, path);
        } catch (IOException | RuntimeException e) {
            UnixSeqpacket.close(s);
            throw e;
        }
    }

    /** Refuses a directory others could write to (replace our socket, or squat its name). */
    private static void requireSafeDirectory(Path dir) throws IOException {
        int mode = (Integer) Files.getAttribute(dir, "unix:mode");
        long owner = Integer.toUnsignedLong((Integer) Files.getAttribute(dir, "unix:uid"));
        long gid = Integer.toUnsignedLong((Integer) Files.getAttribute(dir, "unix:gid"));
        long self = UnixSeqpacket.geteuid();
        String problem = null;
        if ((mode & 0002) != 0) {
            problem = "it is world-writable (mode " + Integer.toOctalString(mode & 07777) + ")";
        } else if ((mode & 0020) != 0 && gid != 0) {
            problem = "it is writable by group " + gid + " (mode " + Integer.toOctalString(mode & 07777) + ")";
        } else if (owner != 0 && owner != self) {
            problem = "it belongs to uid " + owner + ", neither root nor this process (uid " + self + ")";
        }
        if (problem != null) {
            throw new IOException("refusing to put the ZDS socket in " + dir + ": " + problem
                    + "; whoever can write there can replace the socket");
        }
    }

    private static boolean isSocket(Path path) throws IOException {
        Object mode = Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        return mode instanceof Integer m && (m & 0170000) == 0140000;
    }

    public Path path() {
        return path;
    }

    /** Blocks for the next connection; {@link #close()} from another thread ends it with an exception. */
    public ZdsSocket accept() throws IOException {
        while (true) {
            int s = fd.acquire();
            int c;
            try {
                c = UnixSeqpacket.accept(s);
            } finally {
                fd.release();
            }
            if (c >= 0) {
                return new ZdsSocket(c);
            }
            if (fd.isClosed()) {
                throw new ClosedChannelException();
            }
            int errno = -c;
            // A connection that was reset before we took it is not the listener's failure.
            if (errno == 103 || errno == 11) {
                continue;
            }
            throw UnixSeqpacket.failure("accept", errno);
        }
    }

    /** Idempotent; wakes a thread blocked in {@link #accept()} and removes the socket file. */
    @Override
    public void close() {
        if (fd.isClosed()) {
            return;
        }
        fd.close();
        try {
            Files.deleteIfExists(path);
        } catch (IOException ignored) {
            // The file is only a name; a later bind() removes it anyway.
        }
    }
}
