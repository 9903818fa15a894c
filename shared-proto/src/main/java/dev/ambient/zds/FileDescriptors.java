package dev.ambient.zds;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Raw file descriptors as ZDS passes them: open a namespace file to send it, close one that
 * was received. Netty's {@code FileDescriptor.from} opens write-only and truncates, so namespace
 * files are opened here with open(O_RDONLY|O_CLOEXEC).
 */
public final class FileDescriptors {

    private FileDescriptors() {
    }

    /** Opens {@code path} read-only, close-on-exec; the caller owns the returned fd. */
    public static int openReadOnly(Path path) throws IOException {
        return UnixSeqpacket.openReadOnly(path);
    }

    public static void close(int fd) {
        if (fd >= 0) {
            UnixSeqpacket.close(fd);
        }
    }

    /**
     * The inode of what an fd of this process refers to (stat through /proc/self/fd). For a
     * namespace it is the namespace's inode ({@code ip netns identify}, {@code net:[inode]}), also
     * when the fd was opened from a bind mount such as /var/run/netns/NAME, whose link text is
     * that path rather than {@code net:[...]}.
     */
    public static long inode(int fd) throws IOException {
        return (Long) Files.getAttribute(Path.of("/proc/self/fd/" + fd), "unix:ino");
    }
}
