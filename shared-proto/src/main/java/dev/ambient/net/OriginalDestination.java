package dev.ambient.net;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import io.netty.channel.Channel;
import io.netty.channel.epoll.EpollSocketChannel;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.Optional;

/**
 * The destination a connection had before iptables/nftables REDIRECT rewrote it, read with
 * getsockopt(SO_ORIGINAL_DST) through the Foreign Function &amp; Memory API (Java has no such
 * option; no per-connection shelling out). Needs the native epoll transport for the socket's fd.
 */
public final class OriginalDestination {

    private static final int SOL_IP = 0;
    private static final int SOL_IPV6 = 41;
    /** Same value for IPv4 (SO_ORIGINAL_DST) and IPv6 (IP6T_SO_ORIGINAL_DST). */
    private static final int SO_ORIGINAL_DST = 80;
    private static final int AF_INET = 2;
    private static final int AF_INET6 = 10;

    private static final MethodHandle GETSOCKOPT;

    static {
        Linker linker = Linker.nativeLinker();
        GETSOCKOPT = linker.downcallHandle(linker.defaultLookup().find("getsockopt").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
    }

    private OriginalDestination() {
    }

    /** Empty when the connection was not redirected (no NAT entry) or the transport is not epoll. */
    public static Optional<InetSocketAddress> of(Channel ch) {
        if (!(ch instanceof EpollSocketChannel epoll)) {
            return Optional.empty();
        }
        boolean v6 = ((InetSocketAddress) ch.localAddress()).getAddress() instanceof java.net.Inet6Address;
        return read(epoll.fd().intValue(), v6);
    }

    static Optional<InetSocketAddress> read(int fd, boolean v6) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment addr = arena.allocate(128);
            MemorySegment len = arena.allocate(JAVA_INT);
            len.set(JAVA_INT, 0, 128);
            int rc = (int) GETSOCKOPT.invokeExact(fd, v6 ? SOL_IPV6 : SOL_IP, SO_ORIGINAL_DST, addr, len);
            if (rc != 0) {
                return Optional.empty();
            }
            // struct sockaddr_in / sockaddr_in6: family in host order, port in network order.
            int family = Short.toUnsignedInt(addr.get(ValueLayout.JAVA_SHORT_UNALIGNED, 0));
            int port = (Byte.toUnsignedInt(addr.get(JAVA_BYTE, 2)) << 8) | Byte.toUnsignedInt(addr.get(JAVA_BYTE, 3));
            byte[] ip;
            if (family == AF_INET) {
                ip = addr.asSlice(4, 4).toArray(JAVA_BYTE);
            } else if (family == AF_INET6) {
                ip = addr.asSlice(8, 16).toArray(JAVA_BYTE);
            } else {
                return Optional.empty();
            }
            return Optional.of(new InetSocketAddress(InetAddress.getByAddress(ip), port));
        } catch (UnknownHostException e) {
            return Optional.empty();
        } catch (Throwable t) {
            throw new IllegalStateException("getsockopt(SO_ORIGINAL_DST) failed", t);
        }
    }
}
