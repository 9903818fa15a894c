package dev.ambient.zds;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * The libc calls behind the ZDS transport, through the Foreign Function &amp; Memory API: the JDK's
 * unix-domain channels support neither SOCK_SEQPACKET nor SCM_RIGHTS. Linux x86_64/aarch64
 * (LP64) struct layouts.
 */
final class UnixSeqpacket {

    static final int AF_UNIX = 1;
    static final int SOCK_SEQPACKET = 5;
    static final int SOCK_CLOEXEC = 0x80000;
    static final int SOL_SOCKET = 1;
    static final int SCM_RIGHTS = 1;
    static final int MSG_TRUNC = 0x20;
    static final int MSG_CTRUNC = 0x8;
    static final int MSG_NOSIGNAL = 0x4000;
    static final int MSG_CMSG_CLOEXEC = 0x40000000;
    static final int SHUT_RDWR = 2;
    static final int SO_PEERCRED = 17;
    /** sizeof(struct ucred): pid_t pid, uid_t uid, gid_t gid. */
    static final int UCRED_SIZE = 12;
    static final int EINTR = 4;
    static final int O_RDONLY = 0;
    static final int O_CLOEXEC = 0x80000;
    /** sizeof(sockaddr_un.sun_path); one byte goes to the terminating NUL. */
    static final int SUN_PATH_MAX = 108;
    /** CMSG_SPACE(sizeof(int)) and CMSG_LEN(sizeof(int)) on LP64. */
    static final int CMSG_SPACE_ONE_FD = 24;
    static final int CMSG_LEN_ONE_FD = 20;
    static final int CMSG_DATA_OFFSET = 16;

    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));

    /** struct msghdr: name, namelen(+pad), iov, iovlen, control, controllen, flags(+pad). */
    static final long MSG_NAME = 0, MSG_NAMELEN = 8, MSG_IOV = 16, MSG_IOVLEN = 24,
            MSG_CONTROL = 32, MSG_CONTROLLEN = 40, MSG_FLAGS = 48, MSGHDR_SIZE = 56;

    private static final MethodHandle SOCKET, BIND, LISTEN, ACCEPT4, CONNECT, SENDMSG, RECVMSG,
            SHUTDOWN, CLOSE, OPEN, GETSOCKOPT, GETEUID;

    static {
        Linker linker = Linker.nativeLinker();
        Linker.Option errno = Linker.Option.captureCallState("errno");
        SOCKET = handle(linker, "socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), errno);
        BIND = handle(linker, "bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT), errno);
        LISTEN = handle(linker, "listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT), errno);
        ACCEPT4 = handle(linker, "accept4",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT), errno);
        CONNECT = handle(linker, "connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT), errno);
        SENDMSG = handle(linker, "sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT), errno);
        RECVMSG = handle(linker, "recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT), errno);
        SHUTDOWN = handle(linker, "shutdown", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT), errno);
        CLOSE = handle(linker, "close", FunctionDescriptor.of(JAVA_INT, JAVA_INT), errno);
        OPEN = handle(linker, "open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), errno);
        GETSOCKOPT = handle(linker, "getsockopt",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS), errno);
        GETEUID = handle(linker, "geteuid", FunctionDescriptor.of(JAVA_INT));
    }

    private static MethodHandle handle(Linker linker, String name, FunctionDescriptor fd, Linker.Option... opts) {
        return linker.downcallHandle(linker.defaultLookup().find(name).orElseThrow(), fd, opts);
    }

    private UnixSeqpacket() {
    }

    static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    static IOException failure(String call, int errno) {
        return new IOException(call + " failed: errno " + errno + " (" + Errno.name(errno) + ")");
    }

    static MemorySegment captureState(Arena arena) {
        return arena.allocate(CAPTURE);
    }

    static int socket() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = captureState(arena);
            int fd = (int) SOCKET.invokeExact(st, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                throw failure("socket(AF_UNIX, SOCK_SEQPACKET)", errno(st));
            }
            return fd;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** struct sockaddr_un for a filesystem path; refuses paths the kernel would truncate. */
    static MemorySegment sockaddr(Arena arena, Path path) throws IOException {
        byte[] bytes = path.toString().getBytes(StandardCharsets.UTF_8);
        if (bytes.length >= SUN_PATH_MAX) {
            throw new IOException("unix socket path too long (" + bytes.length + " bytes, max "
                    + (SUN_PATH_MAX - 1) + "): " + path);
        }
        MemorySegment addr = arena.allocate(2 + SUN_PATH_MAX);
        addr.set(JAVA_SHORT, 0, (short) AF_UNIX);
        MemorySegment.copy(bytes, 0, addr, JAVA_BYTE, 2, bytes.length);
        return addr;
    }

    static void bind(int fd, Path path) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = captureState(arena);
            MemorySegment addr = sockaddr(arena, path);
            int rc = (int) BIND.invokeExact(st, fd, addr, (int) addr.byteSize());
            if (rc != 0) {
                throw failure("bind(" + path + ")", errno(st));
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    static void listen(int fd, int backlog) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = captureState(arena);
            int rc = (int) LISTEN.invokeExact(st, fd, backlog);
            if (rc != 0) {
                throw failure("listen", errno(st));
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** @return the new fd, or -errno */
    static int accept(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = captureState(arena);
            while (true) {
                int c = (int) ACCEPT4.invokeExact(st, fd, MemorySegment.NULL, MemorySegment.NULL, SOCK_CLOEXEC);
                if (c >= 0) {
                    return c;
                }
                int e = errno(st);
                if (e != EINTR) {
                    return -e;
                }
            }
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    static void connect(int fd, Path path) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = captureState(arena);
            MemorySegment addr = sockaddr(arena, path);
            while (true) {
                int rc = (int) CONNECT.invokeExact(st, fd, addr, (int) addr.byteSize());
                if (rc == 0) {
                    return;
                }
                int e = errno(st);
                if (e != EINTR) {
                    throw failure("connect(" + path + ")", e);
                }
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** One packet; with {@code passFd >= 0} the fd travels as SCM_RIGHTS (the kernel duplicates it). */
    static void send(int fd, byte[] payload, int passFd) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = captureState(arena);
            MemorySegment data = arena.allocate(Math.max(1, payload.length));
            MemorySegment.copy(payload, 0, data, JAVA_BYTE, 0, payload.length);
            MemorySegment iov = arena.allocate(16, 8);
            iov.set(ADDRESS, 0, data);
            iov.set(JAVA_LONG, 8, payload.length);
            MemorySegment msg = arena.allocate(MSGHDR_SIZE, 8);
            msg.set(ADDRESS, MSG_IOV, iov);
            msg.set(JAVA_LONG, MSG_IOVLEN, 1);
            if (passFd >= 0) {
                MemorySegment control = arena.allocate(CMSG_SPACE_ONE_FD, 8);
                control.set(JAVA_LONG, 0, CMSG_LEN_ONE_FD);
                control.set(JAVA_INT, 8, SOL_SOCKET);
                control.set(JAVA_INT, 12, SCM_RIGHTS);
                control.set(JAVA_INT, CMSG_DATA_OFFSET, passFd);
                msg.set(ADDRESS, MSG_CONTROL, control);
                msg.set(JAVA_LONG, MSG_CONTROLLEN, CMSG_SPACE_ONE_FD);
            }
            while (true) {
                long n = (long) SENDMSG.invokeExact(st, fd, msg, MSG_NOSIGNAL);
                if (n == payload.length) {
                    return;
                }
                if (n >= 0) {
                    throw new IOException("sendmsg sent " + n + " of " + payload.length + " bytes");
                }
                int e = errno(st);
                if (e != EINTR) {
                    throw failure("sendmsg", e);
                }
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** What one recvmsg returned: length (0 = peer closed), the received fds, and the flags. */
    record Received(int length, byte[] payload, int[] fds, int flags) {
    }

    static final int MSG_PEEK = 0x2;
    static final int MSG_DONTWAIT = 0x40;
    static final int EAGAIN = 11;

    /**
     * Without blocking or consuming anything: true when the peer has closed (or reset) the
     * connection, false while it is open (nothing to read, or a packet waiting).
     */
    static boolean peerClosed(int fd) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = captureState(arena);
            MemorySegment data = arena.allocate(1);
            MemorySegment iov = arena.allocate(16, 8);
            iov.set(ADDRESS, 0, data);
            iov.set(JAVA_LONG, 8, 1);
            MemorySegment msg = arena.allocate(MSGHDR_SIZE, 8);
            msg.set(ADDRESS, MSG_IOV, iov);
            msg.set(JAVA_LONG, MSG_IOVLEN, 1);
            long n = (long) RECVMSG.invokeExact(st, fd, msg, MSG_PEEK | MSG_DONTWAIT);
            if (n < 0) {
                int e = errno(st);
                return e != EAGAIN && e != EINTR;
            }
            return n == 0;
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Control room for a few fds: a peer that sends more than one gets them closed, not leaked. */
    private static final int CONTROL_ROOM = 64;

    static Received receive(int fd, int maxLength) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = captureState(arena);
            MemorySegment data = arena.allocate(maxLength);
            MemorySegment iov = arena.allocate(16, 8);
            iov.set(ADDRESS, 0, data);
            iov.set(JAVA_LONG, 8, maxLength);
            MemorySegment control = arena.allocate(CONTROL_ROOM, 8);
            MemorySegment msg = arena.allocate(MSGHDR_SIZE, 8);
            while (true) {
                msg.fill((byte) 0);
                msg.set(ADDRESS, MSG_IOV, iov);
                msg.set(JAVA_LONG, MSG_IOVLEN, 1);
                msg.set(ADDRESS, MSG_CONTROL, control);
                msg.set(JAVA_LONG, MSG_CONTROLLEN, CONTROL_ROOM);
                long n = (long) RECVMSG.invokeExact(st, fd, msg, MSG_CMSG_CLOEXEC);
                if (n < 0) {
                    int e = errno(st);
                    if (e == EINTR) {
                        continue;
                    }
                    throw failure("recvmsg", e);
                }
                int flags = msg.get(JAVA_INT, MSG_FLAGS);
                int[] fds = parseRights(control, msg.get(JAVA_LONG, MSG_CONTROLLEN));
                byte[] payload = data.asSlice(0, Math.min(n, maxLength)).toArray(JAVA_BYTE);
                return new Received((int) n, payload, fds, flags);
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static int[] parseRights(MemorySegment control, long controlLength) {
        int[] fds = new int[0];
        long off = 0;
        while (off + CMSG_DATA_OFFSET <= controlLength) {
            long len = control.get(JAVA_LONG, off);
            if (len < CMSG_DATA_OFFSET || off + len > controlLength) {
                break;
            }
            int level = control.get(JAVA_INT, off + 8);
            int type = control.get(JAVA_INT, off + 12);
            if (level == SOL_SOCKET && type == SCM_RIGHTS) {
                int count = (int) ((len - CMSG_DATA_OFFSET) / 4);
                int[] more = new int[fds.length + count];
                System.arraycopy(fds, 0, more, 0, fds.length);
                for (int i = 0; i < count; i++) {
                    more[fds.length + i] = control.get(JAVA_INT, off + CMSG_DATA_OFFSET + 4L * i);
                }
                fds = more;
            }
            off += (len + 7) & ~7L;
        }
        return fds;
    }

    static void shutdown(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            int ignored = (int) SHUTDOWN.invokeExact(captureState(arena), fd, SHUT_RDWR);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    static void close(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            // No retry on EINTR: on Linux the fd is released either way.
            int ignored = (int) CLOSE.invokeExact(captureState(arena), fd);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    static int openReadOnly(Path path) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = captureState(arena);
            MemorySegment p = arena.allocateFrom(path.toString());
            while (true) {
                int fd = (int) OPEN.invokeExact(st, p, O_RDONLY | O_CLOEXEC);
                if (fd >= 0) {
                    return fd;
                }
                int e = errno(st);
                if (e != EINTR) {
                    throw failure("open(" + path + ")", e);
                }
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * SO_PEERCRED: who the peer was when it called connect() (client side: when the server called
     * listen()), as the kernel recorded it; ids are those of this process's user and pid namespaces
     * (an unmapped uid reads as the overflow uid, a pid outside our namespace as 0).
     */
    static PeerCredentials peerCredentials(int fd) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = captureState(arena);
            MemorySegment ucred = arena.allocate(UCRED_SIZE, 4);
            MemorySegment len = arena.allocate(JAVA_INT);
            len.set(JAVA_INT, 0, UCRED_SIZE);
            int rc = (int) GETSOCKOPT.invokeExact(st, fd, SOL_SOCKET, SO_PEERCRED, ucred, len);
            if (rc != 0) {
                throw failure("getsockopt(SO_PEERCRED)", errno(st));
            }
            if (len.get(JAVA_INT, 0) != UCRED_SIZE) {
                throw new IOException("getsockopt(SO_PEERCRED) returned " + len.get(JAVA_INT, 0) + " bytes, not "
                        + UCRED_SIZE);
            }
            return new PeerCredentials(ucred.get(JAVA_INT, 0), Integer.toUnsignedLong(ucred.get(JAVA_INT, 4)),
                    Integer.toUnsignedLong(ucred.get(JAVA_INT, 8)));
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** This process's effective uid. */
    static long geteuid() {
        try {
            return Integer.toUnsignedLong((int) GETEUID.invokeExact());
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
