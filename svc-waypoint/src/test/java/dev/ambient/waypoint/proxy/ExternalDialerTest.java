package dev.ambient.waypoint.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.net.InetSocketAddress;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code waypoint.upstream.dns-servers}: IP literals with an optional port; a name is refused at start. */
class ExternalDialerTest {

    @Test
    void resolverAddressesAreIpLiteralsWithAnOptionalPort() {
        assertEquals(List.of(new InetSocketAddress("10.44.200.10", 53), new InetSocketAddress("127.0.0.53", 5353),
                new InetSocketAddress("fd00::1", 53), new InetSocketAddress("fd00::2", 5300)),
                ExternalDialer.parseServers(List.of("10.44.200.10", " 127.0.0.53:5353", "fd00::1", "[fd00::2]:5300")));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ExternalDialer.parseServers(List.of("dns.example.com")));
        assertEquals("waypoint.upstream.dns-servers: 'dns.example.com' is not an IP address (ip, ip:port or"
                + " [ipv6]:port)", e.getMessage());
    }
}
