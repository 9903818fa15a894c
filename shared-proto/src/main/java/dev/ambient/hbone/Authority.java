package dev.ambient.hbone;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;

/** HBONE's {@code :authority}: always a literal {@code ip:port} ({@code [v6]:port}), never a name. */
public final class Authority {

    private Authority() {
    }

    /** @throws IllegalArgumentException with the reason, for anything but a literal address and port */
    public static InetSocketAddress parse(CharSequence authority) {
        if (authority == null || authority.isEmpty()) {
            throw new IllegalArgumentException("missing :authority");
        }
        String s = authority.toString();
        int colon = s.lastIndexOf(':');
        if (colon <= 0 || colon == s.length() - 1) {
            throw new IllegalArgumentException("authority '" + s + "' is not ip:port");
        }
        String host = s.substring(0, colon);
        String portText = s.substring(colon + 1);
        boolean bracketed = host.startsWith("[") && host.endsWith("]");
        if (bracketed) {
            host = host.substring(1, host.length() - 1);
        } else if (host.indexOf(':') >= 0) {
            throw new IllegalArgumentException("IPv6 authority '" + s + "' must be bracketed");
        }
        if (host.indexOf('%') >= 0) {
            // A zone names an interface of the sender's host: meaningless, and never a workload's address.
            throw new IllegalArgumentException("authority '" + s + "' has an IPv6 zone id");
        }
        int port;
        try {
            if (portText.length() > 5 || !portText.chars().allMatch(c -> c >= '0' && c <= '9')) {
                throw new NumberFormatException(portText); // parseInt would take "+80"
            }
            port = Integer.parseInt(portText);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("authority '" + s + "' has no numeric port");
        }
        if (port < 1 || port > 65_535) {
            throw new IllegalArgumentException("authority '" + s + "' port out of range");
        }
        return new InetSocketAddress(literal(host, s, bracketed), port);
    }

    /** {@code ip:port}, or {@code [v6]:port} with the IPv6 address in its RFC 5952 form. */
    public static String format(InetSocketAddress address) {
        InetAddress ip = address.getAddress();
        String host = host(ip);
        return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + address.getPort();
    }

    /**
     * The textual form of an address: dotted quad for IPv4 (an IPv4-mapped IPv6 address too), RFC 5952
     * for IPv6 (lower case, no leading zeros, the longest run of two or more zero groups as
     * {@code ::}), never a zone id. Java's own form ({@code fd00:0:0:0:0:0:0:1}) is valid but is not
     * what peers, logs and Istio write.
     */
    public static String host(InetAddress address) {
        byte[] b = address.getAddress();
        if (b.length == 4) {
            return (b[0] & 0xff) + "." + (b[1] & 0xff) + "." + (b[2] & 0xff) + "." + (b[3] & 0xff);
        }
        int[] groups = new int[8];
        for (int i = 0; i < 8; i++) {
            groups[i] = ((b[2 * i] & 0xff) << 8) | (b[2 * i + 1] & 0xff);
        }
        int bestStart = -1;
        int bestLength = 1;
        for (int i = 0; i < 8; ) {
            if (groups[i] != 0) {
                i++;
                continue;
            }
            int j = i;
            while (j < 8 && groups[j] == 0) {
                j++;
            }
            if (j - i > bestLength) {
                bestStart = i;
                bestLength = j - i;
            }
            i = j;
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            if (i == bestStart) {
                sb.append("::");
                i += bestLength - 1;
                continue;
            }
            if (sb.length() > 0 && sb.charAt(sb.length() - 1) != ':') {
                sb.append(':');
            }
            sb.append(Integer.toHexString(groups[i]));
        }
        return sb.toString();
    }

    private static InetAddress literal(String host, String whole, boolean v6) {
        try {
            // ofLiteral never resolves names: "999.1.1.1" or "db.local" fail instead of reaching DNS.
            return v6 ? Inet6Address.ofLiteral(host) : Inet4Address.ofLiteral(host);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("authority '" + whole + "' is not an IP literal");
        }
    }
}
