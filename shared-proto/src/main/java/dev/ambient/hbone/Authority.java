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
        int port;
        try {
            port = Integer.parseInt(portText);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("authority '" + s + "' has no numeric port");
        }
        if (port < 1 || port > 65_535) {
            throw new IllegalArgumentException("authority '" + s + "' port out of range");
        }
        return new InetSocketAddress(literal(host, s, bracketed), port);
    }

    public static String format(InetSocketAddress address) {
        InetAddress ip = address.getAddress();
        String host = ip.getHostAddress();
        return (ip instanceof Inet6Address ? "[" + host + "]" : host) + ":" + address.getPort();
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
