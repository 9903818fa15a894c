package dev.ambient.net;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A Linux network namespace held open by a file descriptor, and a way to run code with the
 * calling thread inside it. The namespace of a socket is fixed when the socket is created, so
 * creating a socket inside {@link #call} gives a socket that lives in that namespace for good,
 * whichever thread later binds, connects or reads it.
 *
 * <p>setns(2) moves only the calling thread. {@link #call} remembers where the thread was
 * ({@code /proc/thread-self/ns/net}) and always moves it back, even when the task throws. Use it
 * on worker threads, never on an event loop (it blocks for the duration of the task).
 */
public final class NetworkNamespace implements AutoCloseable {

    private static final int O_RDONLY = 0;
    private static final int O_CLOEXEC = 0x80000;
    private static final int CLONE_NEWNET = 0x40000000;
    private static final int EINTR = 4;

    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final MethodHandle OPEN;
    private static final MethodHandle CLOSE;
    private static final MethodHandle SETNS;
    private static final MethodHandle IOCTL;
    /** ioctl(fd, NS_GET_NSTYPE) answers the CLONE_NEW* type of a namespace fd (Linux 4.11+). */
    private static final long NS_GET_NSTYPE = 0xb703;

    static {
        Linker linker = Linker.nativeLinker();
        Linker.Option errno = Linker.Option.captureCallState("errno");
        OPEN = linker.downcallHandle(linker.defaultLookup().find("open").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), errno);
        CLOSE = linker.downcallHandle(linker.defaultLookup().find("close").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, JAVA_INT), errno);
        SETNS = linker.downcallHandle(linker.defaultLookup().find("setns").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT), errno);
        IOCTL = linker.downcallHandle(linker.defaultLookup().find("ioctl").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG), errno);
    }

    /** -1 once closed. */
    private final AtomicInteger fd;
    /** Calls read-lock it, close write-locks it: never closed while a thread is entering it. */
    private final java.util.concurrent.locks.ReentrantReadWriteLock inUse =
            new java.util.concurrent.locks.ReentrantReadWriteLock();
    private final String description;

    private NetworkNamespace(int fd, String description) {
        this.fd = new AtomicInteger(fd);
        this.description = description;
    }

    /** Opens a namespace file ({@code /var/run/netns/x}, {@code /proc/<pid>/ns/net}) read-only. */
    public static NetworkNamespace open(Path path) throws IOException {
        int fd = openReadOnly(path);
        try {
            return adopt(fd);
        } catch (IOException e) {
            closeFd(fd);
            throw new IOException(path + ": " + e.getMessage(), e);
        }
    }

    /** The namespace the calling thread is in now. */
    public static NetworkNamespace current() throws IOException {
        return open(Path.of("/proc/thread-self/ns/net"));
    }

    /**
     * Takes ownership of an fd received from elsewhere (an Add over ZDS). Refuses, without
     * closing it, an fd that is not a network namespace, so the caller can report the error.
     */
    public static NetworkNamespace adopt(int fd) throws IOException {
        if (fd < 0) {
            throw new IOException("no file descriptor (" + fd + ")");
        }
        int type;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = arena.allocate(CAPTURE);
            type = (int) IOCTL.invokeExact(st, fd, NS_GET_NSTYPE);
            if (type < 0) {
                int e = (int) ERRNO.get(st, 0L);
                throw new IOException(e == 9 ? "fd " + fd + " is not open"
                        : "fd " + fd + " is not a network namespace (errno " + e + ")");
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        if (type != CLONE_NEWNET) {
            throw new IOException("fd " + fd + " is a namespace of type 0x" + Integer.toHexString(type)
                    + ", not a network namespace");
        }
        // stat() through /proc follows to the nsfs inode, whether the fd came from a bind mount
        // (/var/run/netns/x) or from /proc/<pid>/ns/net.
        long inode = (Long) Files.getAttribute(Path.of("/proc/self/fd/" + fd), "unix:ino");
        String target = "net:[" + inode + "]";
        return new NetworkNamespace(fd, target);
    }

    /** The fd, for passing it on (SCM_RIGHTS); stays owned by this object. */
    public int fd() {
        int f = fd.get();
        if (f < 0) {
            throw new IllegalStateException("network namespace " + description + " is closed");
        }
        return f;
    }

    /** The namespace's inode, as {@code ip netns identify} and /proc show it. */
    public long inode() {
        return Long.parseLong(description.substring("net:[".length(), description.length() - 1));
    }

    /** {@code net:[4026532297]}: equal strings are the same namespace. */
    public String describe() {
        return description;
    }

    /** The inode of the namespace the calling thread is in now. */
    public static long currentInode() throws IOException {
        String link = Files.readSymbolicLink(Path.of("/proc/thread-self/ns/net")).toString();
        return Long.parseLong(link.substring("net:[".length(), link.length() - 1));
    }

    /**
     * Runs {@code task} with the calling thread inside this namespace and moves it back to where
     * it was, whether the task returns or throws.
     *
     * @throws IOException if the thread cannot enter the namespace (nothing ran)
     * @throws IllegalStateException if the thread could not be moved back: it must not be reused
     */
    public <T> T call(Callable<T> task) throws Exception {
        // Held while inside: close() waits, so the fd cannot be closed (and its number reused for
        // another namespace, or for `home` below) between reading it and setns.
        inUse.readLock().lock();
        try {
            return callLocked(task);
        } finally {
            inUse.readLock().unlock();
        }
    }

    private <T> T callLocked(Callable<T> task) throws Exception {
        int target = fd();
        int home = openReadOnly(Path.of("/proc/thread-self/ns/net"));
        try {
            setns(target, "enter " + description);
            try {
                return task.call();
            } finally {
                try {
                    setns(home, "return to the thread's namespace");
                } catch (IOException e) {
                    // Setns back into our own namespace does not fail in practice; if it does,
                    // the thread would silently create sockets in the pod: stop it loudly.
                    throw new IllegalStateException("thread " + Thread.currentThread().getName()
                            + " is stranded in " + description + ": " + e.getMessage(), e);
                }
            }
        } finally {
            closeFd(home);
        }
    }

    /** {@link #call} for a task without a result. */
    public void run(Runnable task) throws IOException {
        try {
            call(() -> {
                task.run();
                return null;
            });
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    public boolean isOpen() {
        return fd.get() >= 0;
    }

    /** Idempotent. Sockets already created inside keep the namespace alive on their own. */
    @Override
    public void close() {
        inUse.writeLock().lock();
        try {
            int f = fd.getAndSet(-1);
            if (f >= 0) {
                closeFd(f);
            }
        } finally {
            inUse.writeLock().unlock();
        }
    }

    @Override
    public String toString() {
        return description + (isOpen() ? "" : " (closed)");
    }

    private static void setns(int fd, String what) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = arena.allocate(CAPTURE);
            int rc = (int) SETNS.invokeExact(st, fd, CLONE_NEWNET);
            if (rc != 0) {
                int e = (int) ERRNO.get(st, 0L);
                throw new IOException("setns(" + what + ") failed: errno " + e + (e == 1 ? " (EPERM: needs CAP_SYS_ADMIN)"
                        : e == 22 ? " (EINVAL: not a network namespace)" : e == 9 ? " (EBADF)" : ""));
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static int openReadOnly(Path path) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = arena.allocate(CAPTURE);
            MemorySegment p = arena.allocateFrom(path.toString());
            while (true) {
                int fd = (int) OPEN.invokeExact(st, p, O_RDONLY | O_CLOEXEC);
                if (fd >= 0) {
                    return fd;
                }
                int e = (int) ERRNO.get(st, 0L);
                if (e != EINTR) {
                    throw new IOException("open(" + path + ") failed: errno " + e + (e == 2 ? " (ENOENT)" : ""));
                }
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static void closeFd(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            int ignored = (int) CLOSE.invokeExact(arena.allocate(CAPTURE), fd);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
