package dev.ambient.ztunnel.dns;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The DNS codec against what a hostile pod can send: each malformed shape is refused with its
 * reason (never an exception other than {@link DnsMessage.Malformed}, never a loop), and the
 * well-formed ones read as a resolver wrote them. Messages are written in hex, byte by byte.
 */
class DnsMessageTest {

    /** Header: id 0x1234, RD, the given counts. */
    static String header(int qd, int an, int ns, int ar) {
        return "1234 0100 %04x %04x %04x %04x".formatted(qd, an, ns, ar);
    }

    /** "api.example.com" as labels. */
    static final String API = "03 617069 07 6578616d706c65 03 636f6d 00";
    static final String A_IN = "0001 0001";

    static byte[] hex(String s) {
        return HexFormat.of().parseHex(s.replace(" ", ""));
    }

    static Arguments bad(String name, String hex, String reason) {
        return Arguments.of(name, hex, reason);
    }

    static Stream<Arguments> malformed() {
        String label63 = "3f" + "61".repeat(63);
        return Stream.of(
                bad("empty", "", "shorter than a DNS header"),
                bad("half a header", "1234 0100 0001", "shorter than a DNS header"),
                bad("a question count with no question", header(1, 0, 0, 0), "exceed"),
                bad("counts far beyond the bytes", header(0xffff, 0xffff, 0, 0) + API + A_IN, "exceed"),
                bad("a name cut short", header(1, 0, 0, 0) + "03 617069 07 6578", "truncated"),
                bad("type and class cut short", header(1, 0, 0, 0) + API + "0001", "truncated"),
                bad("a pointer to itself", header(1, 0, 0, 0) + "c00c" + A_IN, "does not point backwards"),
                bad("a pointer forwards", header(1, 0, 0, 0) + "c010" + A_IN + "00", "does not point backwards"),
                bad("a two-step loop (label then pointer back to it)", header(1, 0, 0, 0) + "01 61 c00c" + A_IN,
                        "does not point backwards"),
                bad("a label type 0x40 (extended labels)", header(1, 0, 0, 0) + "41" + A_IN, "label type 0x40"),
                bad("a label type 0x80", header(1, 0, 0, 0) + "81 61" + A_IN, "label type 0x80"),
                bad("a name longer than 255 bytes", header(1, 0, 0, 0) + label63.repeat(4) + "00" + A_IN,
                        "name longer than 255"),
                bad("a name of exactly 255 bytes is fine until its question is cut",
                        header(1, 0, 0, 0) + label63.repeat(3) + "3d" + "61".repeat(61) + "00", "truncated"),
                bad("a record's rdata beyond the message", header(1, 1, 0, 0) + API + A_IN
                        + "c00c 0001 0001 0000003c 00ff 01020304", "truncated"),
                bad("bytes after the last record", header(1, 0, 0, 0) + API + A_IN + "00", "after the last record"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("malformed")
    void malformedMessagesAreRefusedWithTheirReason(String name, String hex, String reason) {
        byte[] b = hex(hex);
        DnsMessage.Malformed e = assertThrows(DnsMessage.Malformed.class, () -> DnsMessage.parse(b), name);
        assertTrue(e.getMessage().contains(reason), name + ": " + e.getMessage());
        assertEquals(b.length >= 12 ? 0x1234 : -1, e.id(), "the id, where there is one, for a FORMERR answer");
    }

    @Test
    void aNameOfExactly255BytesReadsAndOneMoreDoesNot() throws Exception {
        String label63 = "3f" + "61".repeat(63);
        // 3 x 64 + 62 + 1 (root) = 255
        DnsMessage ok = DnsMessage.parse(hex(header(1, 0, 0, 0) + label63.repeat(3) + "3d" + "61".repeat(61) + "00"
                + A_IN));
        assertEquals(253, ok.questions().getFirst().name().length(), "63+63+63+61 letters and 3 dots");
        assertThrows(DnsMessage.Malformed.class, () -> DnsMessage.parse(hex(header(1, 0, 0, 0) + label63.repeat(3)
                + "3e" + "61".repeat(62) + "00" + A_IN)));
    }

    @Test
    void aQueryAsDigWritesIt() throws Exception {
        // dig api.example.com A +edns=0 (payload 1232)
        DnsMessage q = DnsMessage.parse(hex(header(1, 0, 0, 1) + API + A_IN + "00 0029 04d0 00000000 0000"));
        assertEquals(0x1234, q.id());
        assertFalse(q.response());
        assertTrue(q.recursionDesired());
        assertEquals(0, q.opcode());
        assertEquals(new DnsMessage.Question("api.example.com", 1, 1), q.questions().getFirst());
        assertEquals(1232, q.udpLimit());
        assertEquals(512, DnsMessage.parse(hex(header(1, 0, 0, 0) + API + A_IN)).udpLimit(), "no EDNS: 512");
        assertEquals(4096, DnsMessage.parse(hex(header(1, 0, 0, 1) + API + A_IN + "00 0029 ffff 00000000 0000"))
                .udpLimit(), "a claimed 65535 is held to 4096");
    }

    @Test
    void oddBytesInLabelsNeverLookLikeAHostName() throws Exception {
        // "a.b" as ONE label (a dot inside a label), and a NUL byte.
        DnsMessage q = DnsMessage.parse(hex(header(1, 0, 0, 0) + "03 612e62 02 6100 00" + A_IN));
        assertEquals("a\\046b.a\\000", q.questions().getFirst().name());
    }

    @Test
    void wellFormedPointersRead() throws Exception {
        // An answer whose record names point at the question (0xc00c), and a CNAME chain.
        byte[] b = hex("1234 8180 0001 0002 0000 0000" + "03 777777" + API + A_IN
                + "c00c 0005 0001 0000012c 0002 c010"
                + "c010 0001 0001 0000003c 0004 c0000205");
        DnsMessage m = DnsMessage.parse(b);
        assertEquals("www.api.example.com", m.questions().getFirst().name());
        assertEquals("www.api.example.com", m.answers().get(0).name());
        assertEquals("api.example.com", m.answers().get(1).name());
        assertEquals(60, m.cacheTtl().orElseThrow(), "the smallest TTL");
        assertArrayEquals(new byte[] {(byte) 192, 0, 2, 5}, m.addresses(DnsMessage.TYPE_A).getFirst());
    }

    @Test
    void negativeAnswersAreCachedForTheSoaMinimumAndFailuresNotAtAll() throws Exception {
        String soa = "c010 0006 0001 00000e10 0016 00 00 00000001 00000e10 00000384 00093a80 0000001e";
        DnsMessage nx = DnsMessage.parse(hex("1234 8183 0001 0000 0001 0000" + "03 6e6f70" + API + A_IN + soa));
        assertEquals(DnsMessage.NXDOMAIN, nx.rcode());
        assertEquals(30, nx.cacheTtl().orElseThrow(), "min(SOA TTL 3600, SOA minimum 30)");
        DnsMessage nxNoSoa = DnsMessage.parse(hex("1234 8183 0001 0000 0000 0000" + API + A_IN));
        assertTrue(nxNoSoa.cacheTtl().isEmpty());
        DnsMessage servfail = DnsMessage.parse(hex("1234 8182 0001 0000 0000 0000" + API + A_IN));
        assertTrue(servfail.cacheTtl().isEmpty());
        DnsMessage truncated = DnsMessage.parse(hex("1234 8380 0001 0000 0000 0000" + API + A_IN));
        assertTrue(truncated.truncated());
        assertTrue(truncated.cacheTtl().isEmpty());
    }

    @Test
    void answersWrittenAreReadBackAndFitUdp() throws Exception {
        DnsMessage q = DnsMessage.parse(hex(header(1, 0, 0, 0) + API + A_IN));
        List<byte[]> addresses = List.of(new byte[] {(byte) 240, (byte) 240, 1, 2}, new byte[] {10, 0, 0, 1});
        DnsMessage a = DnsMessage.parse(DnsMessage.answer(q, DnsMessage.NOERROR, true, addresses, DnsMessage.TYPE_A,
                30));
        assertTrue(a.response());
        assertEquals(0x1234, a.id());
        assertEquals(2, a.answers().size());
        assertEquals("api.example.com", a.answers().getFirst().name());
        assertEquals(30, a.cacheTtl().orElseThrow());
        assertArrayEquals(addresses.get(1), a.addresses(DnsMessage.TYPE_A).get(1));

        // 40 addresses do not fit 512 bytes: header and question with TC, no records.
        List<byte[]> many = java.util.stream.IntStream.range(0, 40).mapToObj(i -> new byte[] {10, 0, 0, (byte) i})
                .toList();
        byte[] big = DnsMessage.answer(q, DnsMessage.NOERROR, true, many, DnsMessage.TYPE_A, 30);
        assertTrue(big.length > 512);
        DnsMessage cut = DnsMessage.parse(DnsMessage.fitUdp(big, 512));
        assertTrue(cut.truncated());
        assertEquals(0, cut.answers().size());
        assertEquals("api.example.com", cut.questions().getFirst().name());

        DnsMessage nx = DnsMessage.parse(DnsMessage.answer(q, DnsMessage.NXDOMAIN, true));
        assertEquals(DnsMessage.NXDOMAIN, nx.rcode());
    }

    @Test
    void aCachedAnswerTakesTheNewClientsIdAndQuestionAndOlderTtls() throws Exception {
        DnsMessage q = DnsMessage.parse(hex(header(1, 0, 0, 0) + API + A_IN));
        DnsMessage cached = DnsMessage.parse(DnsMessage.answer(q, DnsMessage.NOERROR, false,
                List.of(new byte[] {1, 2, 3, 4}), DnsMessage.TYPE_A, 300));
        // Another client asks for "API.example.com" (0x20 case randomisation) with id 0xbeef.
        DnsMessage other = DnsMessage.parse(hex("beef 0100 0001 0000 0000 0000" + "03 415049 07 6578616d706c65 03 636f6d 00"
                + A_IN));
        DnsMessage reused = DnsMessage.parse(DnsMessage.reuse(cached, other, 100));
        assertEquals(0xbeef, reused.id());
        assertEquals("API.example.com", reused.questions().getFirst().name());
        assertEquals(200, reused.answers().getFirst().ttl());
        assertEquals(0, DnsMessage.parse(DnsMessage.reuse(cached, other, 1000)).answers().getFirst().ttl());
    }

    @Test
    void queriesForNamesThatCannotBeNamesAreRefused() throws Exception {
        DnsMessage q = DnsMessage.parse(DnsMessage.query(7, "api.example.com.", DnsMessage.TYPE_AAAA));
        assertEquals(new DnsMessage.Question("api.example.com", 28, 1), q.questions().getFirst());
        assertThrows(IllegalArgumentException.class, () -> DnsMessage.query(1, "a..b", 1));
        assertThrows(IllegalArgumentException.class, () -> DnsMessage.query(1, "x".repeat(64) + ".com", 1));
        assertThrows(IllegalArgumentException.class, () -> DnsMessage.query(1, ("a".repeat(60) + ".").repeat(5), 1));
    }
}
