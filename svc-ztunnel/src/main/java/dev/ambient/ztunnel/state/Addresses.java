package dev.ambient.ztunnel.state;

import com.google.protobuf.ByteString;
import dev.ambient.hbone.Authority;
import dev.ambient.proto.workload.Cidr;
import dev.ambient.proto.workload.Workload;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * IP address helpers shared by the state package and its users: literal parsing that never
 * touches DNS, conversion between {@link InetAddress} and the raw bytes carried in the protos,
 * and CIDR containment.
 *
 * <p>All addresses handed out are normalised: no host name, no IPv6 zone, and IPv4-mapped IPv6
 * addresses ({@code ::ffff:a.b.c.d}) become plain IPv4 addresses, so that they compare equal to
 * the 4-byte form.
 */
public final class Addresses {

    private Addresses() {}

    /**
     * Parses an IPv4 dotted quad ({@code 10.0.0.1}, no leading zeros, no short forms) or an IPv6
     * literal ({@code fd00::1}, optionally in brackets; no zone id). Never performs a DNS lookup.
     *
     * @throws IllegalArgumentException if {@code text} is not such a literal
     */
    public static InetAddress parseLiteral(String text) {
        Objects.requireNonNull(text, "text");
        String s = text;
        if (s.indexOf(':') >= 0 || s.startsWith("[")) {
            if (s.indexOf('%') >= 0) {
                throw new IllegalArgumentException("IPv6 zone ids are not supported");
            }
            try {
                return normalize(Inet6Address.ofLiteral(s));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("not an IPv6 address");
            }
        }
        byte[] bytes = new byte[4];
        int part = 0;
        int value = -1;
        int digits = 0;
        boolean leadingZero = false;
        for (int i = 0; i <= s.length(); i++) {
            char c = i < s.length() ? s.charAt(i) : '.';
            if (c >= '0' && c <= '9') {
                if (digits == 0) {
                    value = 0;
                    leadingZero = c == '0';
                } else if (leadingZero) {
                    throw new IllegalArgumentException("IPv4 octets must not have leading zeros");
                }
                value = value * 10 + (c - '0');
                if (++digits > 3 || value > 255) {
                    throw new IllegalArgumentException("IPv4 octet out of range");
                }
            } else if (c == '.') {
                if (digits == 0 || part >= 4) {
                    throw new IllegalArgumentException("not an IPv4 address");
                }
                bytes[part++] = (byte) value;
                digits = 0;
            } else {
                throw new IllegalArgumentException("not an IP address");
            }
        }
        if (part != 4) {
            throw new IllegalArgumentException("an IPv4 address has four octets");
        }
        return fromBytes(bytes);
    }

    /**
     * The textual form of an address: dotted quad for IPv4, RFC 5952 for IPv6 (lower case, no
     * leading zeros, the longest run of two or more zero groups shortened to {@code ::}).
     */
    public static String format(InetAddress address) {
        return Authority.host(normalize(address));
    }

    /** Drops host name and zone id and unmaps IPv4-mapped IPv6 addresses. */
    public static InetAddress normalize(InetAddress address) {
        return fromBytes(address.getAddress());
    }

    /** The address carried as 4 or 16 raw bytes; empty for any other length. */
    public static Optional<InetAddress> fromBytes(ByteString bytes) {
        if (bytes.size() != 4 && bytes.size() != 16) {
            return Optional.empty();
        }
        return Optional.of(fromBytes(bytes.toByteArray()));
    }

    /** The raw bytes of an address, as the protos carry them (4 for IPv4, 16 for IPv6). */
    public static ByteString toBytes(InetAddress address) {
        return ByteString.copyFrom(normalize(address).getAddress());
    }

    /** Every well-formed address of the workload, in order. */
    public static List<InetAddress> addressesOf(Workload workload) {
        List<InetAddress> out = new ArrayList<>(workload.getAddressesCount());
        for (ByteString b : workload.getAddressesList()) {
            fromBytes(b).ifPresent(out::add);
        }
        return out;
    }

    /**
     * Whether {@code ip} lies in the CIDR. An IPv4 address never matches an IPv6 CIDR and vice
     * versa (except IPv4-mapped IPv6 CIDRs, which are treated as IPv4). A malformed CIDR matches
     * nothing; a prefix length longer than the address is treated as the full length.
     */
    public static boolean contains(Cidr cidr, InetAddress ip) {
        byte[] net = cidr.getAddress().toByteArray();
        int length = cidr.getLength();
        if (net.length == 16 && isV4Mapped(net)) {
            byte[] v4 = new byte[4];
            System.arraycopy(net, 12, v4, 0, 4);
            net = v4;
            length = Math.max(0, length - 96);
        }
        if (net.length != 4 && net.length != 16) {
            return false;
        }
        byte[] addr = normalize(ip).getAddress();
        if (addr.length != net.length) {
            return false;
        }
        int bits = Math.min(length, net.length * 8);
        int full = bits / 8;
        for (int i = 0; i < full; i++) {
            if (addr[i] != net[i]) {
                return false;
            }
        }
        int rest = bits % 8;
        if (rest == 0) {
            return true;
        }
        int mask = (0xff << (8 - rest)) & 0xff;
        return (addr[full] & mask) == (net[full] & mask);
    }

    private static boolean isV4Mapped(byte[] b) {
        for (int i = 0; i < 10; i++) {
            if (b[i] != 0) {
                return false;
            }
        }
        return b[10] == (byte) 0xff && b[11] == (byte) 0xff;
    }

    private static InetAddress fromBytes(byte[] bytes) {
        try {
            return InetAddress.getByAddress(bytes);
        } catch (UnknownHostException e) {
            // only thrown for an illegal length, which callers exclude
            throw new IllegalArgumentException("address must have 4 or 16 bytes", e);
        }
    }
}
