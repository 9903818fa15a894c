package dev.ambient.ztunnel.guard;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Set;

/**
 * The sockets this ztunnel listens on, and the one question every proxy path asks before it dials a
 * destination that a client named (a CONNECT authority, an original destination, a SOCKS5 target):
 * is it one of them? A ztunnel's own sockets carry the mark the capture rules exempt, so a dial to
 * its own 15006 is accepted by that same 15006 with the same original destination, and so on until
 * the process runs out of file descriptors. Asked on every path, in shared and in-pod mode, the
 * answer makes that impossible. Pure: the listeners and addresses are given, nothing is looked up.
 *
 * @param listeners every listening socket of this ztunnel
 * @param ownAddresses the addresses of the ztunnel's own network namespace (node IP, interfaces),
 *        where a wildcard-bound listener accepts; loopback counts without being listed
 */
public record OwnListeners(List<Listener> listeners, Set<InetAddress> ownAddresses) {

    /** Where a listener accepts connections. */
    public sealed interface Where {
        /**
         * At every address of every workload this ztunnel serves, and on loopback: the data-plane
         * ports (in-pod, bound to 0.0.0.0 inside each pod, where loopback is the pod's own; in shared
         * mode HBONE binds each workload address). These ports are the mesh's, as in Istio: a
         * workload's application cannot be reached on them through the ztunnel.
         */
        record AtLocalWorkloads() implements Where {
        }

        /** At one address of the ztunnel's own namespace; the wildcard means at all of them. */
        record At(InetAddress address) implements Where {
        }
    }

    /** One listening port; {@code purpose} names it in refusals ("inbound plaintext", "admin"...). */
    public record Listener(String purpose, int port, Where where) {
    }

    public OwnListeners {
        listeners = List.copyOf(listeners);
        ownAddresses = Set.copyOf(ownAddresses);
    }

    /**
     * @param destination what a client asked us to reach
     * @param localWorkload whether its address belongs to a workload served by this ztunnel (always
     *        true for inbound destinations, which must be one)
     */
    public SelfTarget check(InetSocketAddress destination, boolean localWorkload) {
        InetAddress ip = destination.getAddress();
        if (ip == null) {
            return SelfTarget.ELSEWHERE; // an unresolved name is never dialled as such
        }
        if (ip.isAnyLocalAddress()) {
            // connect(0.0.0.0) reaches this host itself: never a destination worth proxying to.
            return new SelfTarget.Own(destination, "unspecified-address");
        }
        for (Listener l : listeners) {
            if (l.port() == destination.getPort() && accepts(l.where(), ip, localWorkload)) {
                return new SelfTarget.Own(destination, l.purpose());
            }
        }
        return SelfTarget.ELSEWHERE;
    }

    private boolean accepts(Where where, InetAddress ip, boolean localWorkload) {
        return switch (where) {
            case Where.AtLocalWorkloads w -> localWorkload || ip.isLoopbackAddress() || ownAddresses.contains(ip);
            case Where.At(InetAddress bound) -> bound.isAnyLocalAddress()
                    ? ip.isLoopbackAddress() || ownAddresses.contains(ip)
                    : bound.equals(ip);
        };
    }
}
