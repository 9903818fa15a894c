package dev.ambient.net;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import io.netty.channel.Channel;
import io.netty.channel.unix.UnixChannel;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * Sets SO_MARK on a socket through the Foreign Function &amp; Memory API (Netty's epoll transport
 * has no such option). The proxy marks its own connections so that the capture rules, which
 * exempt the mark, never redirect the proxy's traffic back into itself. Needs CAP_NET_ADMIN.
 */
public final class SocketMark {

    private static final int SOL_SOCKET = 1;
    private static final int SO_MARK = 36;
    private static final MethodHandle SETSOCKOPT;

    static {
        Linker linker = Linker.nativeLinker();
        SETSOCKOPT = linker.downcallHandle(linker.defaultLookup().find("setsockopt").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    }

    private SocketMark() {
    }

    /** @return false when the transport has no file descriptor (NIO) or the kernel refused (no CAP_NET_ADMIN) */
    public static boolean set(Channel ch, int mark) {
        if (!(ch instanceof UnixChannel epoll)) {
            return false;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment value = arena.allocate(JAVA_INT);
            value.set(JAVA_INT, 0, mark);
            int rc = (int) SETSOCKOPT.invokeExact(epoll.fd().intValue(), SOL_SOCKET, SO_MARK, value, 4);
            return rc == 0;
        } catch (Throwable t) {
            throw new IllegalStateException("setsockopt(SO_MARK) failed", t);
        }
    }
}
