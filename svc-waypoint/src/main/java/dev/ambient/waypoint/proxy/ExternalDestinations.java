package dev.ambient.waypoint.proxy;

import dev.ambient.waypoint.state.WaypointState;
import io.netty.util.NetUtil;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;
import java.util.stream.Collectors;

/**
 * Which addresses the waypoint may dial as "outside the mesh". Refused for any endpoint: loopback,
 * wildcard, link-local (cloud metadata services) and multicast. The address of an external name is
 * whatever that name's DNS says, and whoever controls it could otherwise aim the waypoint, with its
 * own standing, at what the mesh protects; so a resolved name is also refused when it is this
 * host's (every interface address, read again every {@link #REFRESH_SECONDS} s), the mesh's own in
 * the current configuration (workloads other than a MESH_EXTERNAL ServiceEntry's endpoints, their
 * nodes, the virtual addresses of services inside the mesh) or in the operator's denied networks
 * ({@code waypoint.upstream.denied-cidrs}). An address from the configuration itself (a STATIC
 * endpoint, a pod outside the mesh that a service selects) is what its author, bound by the
 * control plane's RBAC, asked for, and is dialled. Private ranges are not refused as such: external
 * services on RFC 1918 addresses are common (an on-premises database, a partner over a VPN), and
 * what is in-cluster is covered by the mesh's own addresses, or by the operator naming the pod,
 * service and node ranges in denied-cidrs.
 */
public final class ExternalDestinations {

    /** How often this host's interface addresses are read again (off the event loop). */
    public static final int REFRESH_SECONDS = 30;

    /** An address block, "address/prefix-length". */
    public record Cidr(byte[] network, int bits, String text) {

        /** Parses "ip/len" or a lone ip (a single address); anything else stops the start with the key named. */
        public static Cidr parse(String s) {
            String t = s.trim();
            int slash = t.indexOf('/');
            String ip = slash < 0 ? t : t.substring(0, slash);
            byte[] network = NetUtil.createByteArrayFromIpAddressString(ip);
            if (network == null) {
                throw new IllegalArgumentException("waypoint.upstream.denied-cidrs: '" + s + "' is not an address block"
                        + " (ip/prefix-length)");
            }
            int bits;
            try {
                bits = slash < 0 ? network.length * 8 : Integer.parseInt(t.substring(slash + 1));
            } catch (NumberFormatException e) {
                bits = -1;
            }
            if (bits < 0 || bits > network.length * 8) {
                throw new IllegalArgumentException("waypoint.upstream.denied-cidrs: '" + s + "' has no prefix length"
                        + " from 0 to " + network.length * 8);
            }
            return new Cidr(network, bits, t);
        }

        boolean contains(InetAddress address) {
            byte[] a = address.getAddress();
            if (a.length != network.length) {
                return false;
            }
            int whole = bits / 8;
            for (int i = 0; i < whole; i++) {
                if (a[i] != network[i]) {
                    return false;
                }
            }
            int rest = bits % 8;
            int mask = (0xff00 >> rest) & 0xff;
            return rest == 0 || (a[whole] & mask) == (network[whole] & mask);
        }
    }

    private final Supplier<WaypointState> state;
    private final List<Cidr> denied;
    private volatile Set<InetAddress> hostAddresses;

    public ExternalDestinations(Supplier<WaypointState> state, List<Cidr> denied) {
        this.state = state;
        this.denied = List.copyOf(denied);
        this.hostAddresses = readHostAddresses();
    }

    /**
     * Why {@code address} must not be dialled as a destination outside the mesh; empty when it may.
     *
     * @param resolved the address is what an external name resolved to (not the configuration's)
     */
    public Optional<String> refusal(InetAddress address, boolean resolved) {
        String ip = address.getHostAddress();
        if (address.isLoopbackAddress() || address.isAnyLocalAddress() || address.isLinkLocalAddress()
                || address.isMulticastAddress()) {
            return Optional.of(ip + " is loopback, wildcard, link-local or multicast, never a destination outside"
                    + " the mesh");
        }
        if (!resolved) {
            return Optional.empty();
        }
        if (hostAddresses.contains(address)) {
            return Optional.of(ip + " is an address of this host");
        }
        Optional<String> owner = state.get().meshAddressOwner(address);
        if (owner.isPresent()) {
            return Optional.of(ip + " is an address of the mesh (" + owner.get() + ")");
        }
        for (Cidr c : denied) {
            if (c.contains(address)) {
                return Optional.of(ip + " is in a denied network (" + c.text() + ", waypoint.upstream.denied-cidrs)");
            }
        }
        return Optional.empty();
    }

    /** Reads this host's interface addresses again: blocking (netlink), so never on an event loop. */
    public void refreshHostAddresses() {
        hostAddresses = readHostAddresses();
    }

    private static Set<InetAddress> readHostAddresses() {
        try {
            return Collections.list(NetworkInterface.getNetworkInterfaces()).stream()
                    .flatMap(NetworkInterface::inetAddresses)
                    .map(ExternalDestinations::withoutScope)
                    .collect(Collectors.toUnmodifiableSet());
        } catch (SocketException e) {
            throw new IllegalStateException("cannot list this host's addresses: " + e.getMessage(), e);
        }
    }

    /** An IPv6 interface address carries its scope; a resolved one does not, and must still match. */
    private static InetAddress withoutScope(InetAddress a) {
        try {
            return InetAddress.getByAddress(a.getAddress());
        } catch (java.net.UnknownHostException e) {
            throw new IllegalStateException(e);
        }
    }
}
