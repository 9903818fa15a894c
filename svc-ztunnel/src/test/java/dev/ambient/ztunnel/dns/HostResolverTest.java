package dev.ambient.ztunnel.dns;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.ambient.net.Transport;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The ztunnel's own lookups of ServiceEntry hosts (resolution DNS), against Debian's dnsmasq as the
 * upstream over real UDP: a name with only AAAA records, one with both, one with neither.
 */
@Timeout(60)
class HostResolverTest {

    static final String LO = "127.0.0.1";
    static final int UPSTREAM = 55155;

    static Transport transport;
    static Dnsmasq dnsmasq;

    @BeforeAll
    static void upstream() throws Exception {
        transport = Transport.create("host-resolver-test", 1);
        dnsmasq = Dnsmasq.start(null, LO, UPSTREAM, "--host-record=v6only.outside.test,2001:db8::7",
                "--host-record=both.outside.test,198.51.100.30,2001:db8::30");
    }

    @AfterAll
    static void stop() throws Exception {
        dnsmasq.close();
        transport.close();
    }

    static HostResolver resolver() {
        return new HostResolver(new DnsUpstream(transport, List.of(new InetSocketAddress(LO, UPSTREAM)),
                Duration.ofMillis(500), 0), new DnsCache(100, Duration.ofMinutes(5), Duration.ofSeconds(30)));
    }

    static InetAddress resolve(HostResolver r, String host) throws Exception {
        return r.resolve(host).get(5, TimeUnit.SECONDS);
    }

    /** Queries of one type for one name that reached dnsmasq. */
    static long asked(String type, String name) throws IOException {
        return dnsmasq.log().lines().filter(l -> l.contains("query[" + type + "] " + name + " from")).count();
    }

    @Test
    void aNameWithOnlyAaaaRecordsResolvesToItsIpv6AddressAndThatAnswerIsCached() throws Exception {
        HostResolver r = resolver();
        assertEquals(InetAddress.getByName("2001:db8::7"), resolve(r, "v6only.outside.test"));
        assertEquals(1, asked("AAAA", "v6only.outside.test"));
        // Cached per type: the AAAA answer is used again without asking (the A answer, empty and
        // without an SOA, may not be kept and is asked again).
        assertEquals(InetAddress.getByName("2001:db8::7"), resolve(r, "V6ONLY.outside.test"));
        Thread.sleep(200);
        assertEquals(1, asked("AAAA", "v6only.outside.test"));
    }

    @Test
    void aNameWithBothFamiliesGivesItsIpv4AddressWithoutAskingForAaaa() throws Exception {
        HostResolver r = resolver();
        assertEquals(InetAddress.getByName("198.51.100.30"), resolve(r, "both.outside.test"));
        assertEquals(InetAddress.getByName("198.51.100.1"), resolve(r, "probe.outside.test"));
        Thread.sleep(200);
        assertEquals(0, asked("AAAA", "both.outside.test"));
        assertEquals(0, asked("AAAA", "probe.outside.test"));
    }

    @Test
    void aNameWithNoAddressFailsNamingItAndTheRcode() throws Exception {
        HostResolver r = resolver();
        ExecutionException e = assertThrows(ExecutionException.class, () -> resolve(r, "nothing.outside.test"));
        assertInstanceOf(UnknownHostException.class, e.getCause());
        assertEquals("nothing.outside.test: no address (rcode 3)", e.getCause().getMessage());
        // NXDOMAIN holds for every type: no AAAA question follows it.
        assertEquals(0, asked("AAAA", "nothing.outside.test"));
        // A good name right after still resolves.
        assertEquals(InetAddress.getByName("198.51.100.1"), resolve(r, "probe.outside.test"));
    }
}
