package dev.ambient.hbone;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** HBONE's {@code :authority} of both families: what we send, what we accept, what we refuse. */
class AuthorityTest {

    @ParameterizedTest
    @CsvSource({
            "10.248.1.2, 8080, 10.248.1.2:8080",
            "fd00:a8::1:2, 8080, [fd00:a8::1:2]:8080",
            "fd00:a8:0:0:0:0:1:2, 15008, [fd00:a8::1:2]:15008",
            "::1, 53, [::1]:53",
            "2001:db8:0:0:1:0:0:1, 443, [2001:db8::1:0:0:1]:443", // the first longest zero run
            "2001:db8:0:1:1:1:1:1, 80, [2001:db8:0:1:1:1:1:1]:80", // one zero group is not shortened
            "::ffff:10.0.0.1, 80, 10.0.0.1:80", // Java unmaps it; sent as the IPv4 address it is
    })
    void formatsBothFamiliesAndParsesWhatItFormats(String ip, int port, String expected) {
        InetSocketAddress address = new InetSocketAddress(InetAddress.ofLiteral(ip), port);
        assertEquals(expected, Authority.format(address));
        assertEquals(address, Authority.parse(expected));
    }

    @ParameterizedTest
    @ValueSource(strings = {"fd00::1:8080", "[fd00::1]", "[fd00::1]:", "[fd00::1]:65536", "[10.0.0.1]:80",
            "[fd00::1%eth0]:80", "[fd00::g]:80", "fd00::1", "[::ffff:999.0.0.1]:80", "[fd00::1]:80x", "[fd00::1]:+80", "10.0.0.1:-0"})
    void refusesWhatIsNotABracketedIpv6LiteralAndPort(String authority) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Authority.parse(authority));
        assertTrue(e.getMessage().contains("authority") || e.getMessage().contains("IPv6"), e.getMessage());
    }
}
