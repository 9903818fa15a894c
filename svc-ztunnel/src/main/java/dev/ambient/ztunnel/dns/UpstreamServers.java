package dev.ambient.ztunnel.dns;

import dev.ambient.ztunnel.state.Addresses;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.jboss.logging.Logger;

/** The upstream resolvers: configured ones, else the nameservers of a resolv.conf (IP literals only, never a lookup). */
public final class UpstreamServers {

    private static final Logger LOG = Logger.getLogger(UpstreamServers.class);

    private UpstreamServers() {
    }

    public static List<InetSocketAddress> of(Optional<List<String>> configured, Path resolvConf) {
        if (configured.isPresent() && !configured.get().isEmpty()) {
            List<InetSocketAddress> out = new ArrayList<>();
            for (String s : configured.get()) {
                out.add(parse(s.trim(), "ztunnel.dns.upstream"));
            }
            return out;
        }
        try {
            return fromResolvConf(Files.readString(resolvConf));
        } catch (IOException e) {
            LOG.warnf("dns: cannot read %s (%s): no upstream resolver; names outside the mesh get SERVFAIL",
                    resolvConf, e.getMessage());
            return List.of();
        }
    }

    static List<InetSocketAddress> fromResolvConf(String text) {
        List<InetSocketAddress> out = new ArrayList<>();
        for (String line : text.split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length >= 2 && f[0].equals("nameserver")) {
                try {
                    out.add(new InetSocketAddress(Addresses.parseLiteral(f[1]), 53));
                } catch (IllegalArgumentException e) {
                    LOG.warnf("dns: resolv.conf nameserver '%s' is not an IP address; ignored", f[1]);
                }
            }
        }
        return out;
    }

    /** "ip", "ip:port", "[v6]:port" or a bare IPv6 address. */
    static InetSocketAddress parse(String s, String key) {
        try {
            if (s.startsWith("[")) {
                int close = s.indexOf(']');
                int port = s.length() > close + 1 ? Integer.parseInt(s.substring(close + 2)) : 53;
                return new InetSocketAddress(Addresses.parseLiteral(s.substring(1, close)), port);
            }
            int colon = s.indexOf(':');
            if (colon > 0 && colon == s.lastIndexOf(':')) {
                return new InetSocketAddress(Addresses.parseLiteral(s.substring(0, colon)),
                        Integer.parseInt(s.substring(colon + 1)));
            }
            return new InetSocketAddress(Addresses.parseLiteral(s), 53);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(key + ": '" + s + "' is not ip, ip:port or [ipv6]:port", e);
        }
    }
}
