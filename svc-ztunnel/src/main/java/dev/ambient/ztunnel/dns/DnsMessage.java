package dev.ambient.ztunnel.dns;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.OptionalInt;

/**
 * A DNS message (RFC 1035) read strictly from bytes a hostile pod may have written, and the few
 * messages the proxy writes. Reading never trusts a count or a length: every read is bounded by the
 * message, a name is at most 255 bytes on the wire and 63 per label, and a compression pointer must
 * point before the start of the name part that contains it, so pointer chains always end (no loop,
 * no forward reference). The raw bytes are kept; answers are patched in place (id, TTLs) rather
 * than re-encoded.
 */
public final class DnsMessage {

    public static final int TYPE_A = 1;
    public static final int TYPE_SOA = 6;
    public static final int TYPE_AAAA = 28;
    public static final int TYPE_OPT = 41;
    public static final int CLASS_IN = 1;

    public static final int NOERROR = 0;
    public static final int FORMERR = 1;
    public static final int SERVFAIL = 2;
    public static final int NXDOMAIN = 3;
    public static final int NOTIMP = 4;
    public static final int REFUSED = 5;

    static final int HEADER = 12;
    /** What a name may take on the wire, labels and their length bytes and the root included. */
    static final int MAX_NAME = 255;
    static final int MAX_LABEL = 63;
    /** The smallest UDP payload every DNS client accepts (RFC 1035); the largest we honour (RFC 6891 advice). */
    public static final int MIN_UDP = 512;
    public static final int MAX_UDP = 4096;

    /** Bytes that are not a DNS message we can read; {@link #id()} is -1 when not even the header was there. */
    public static final class Malformed extends Exception {
        private final int id;
        private final boolean response;

        Malformed(String reason, byte[] b) {
            super(reason, null, false, false);
            this.id = b.length >= HEADER ? ((b[0] & 0xff) << 8) | (b[1] & 0xff) : -1;
            this.response = b.length >= 3 && (b[2] & 0x80) != 0;
        }

        public int id() {
            return id;
        }

        /** Whether the header says it is a response (never answered: no reflection loops). */
        public boolean response() {
            return response;
        }
    }

    public record Question(String name, int type, int qclass) {
        /** The name in lower case, without the final dot: how names are compared. */
        public String key() {
            return name.toLowerCase(Locale.ROOT);
        }
    }

    /** A resource record; {@code ttlOffset} is where its TTL sits in the raw bytes. */
    public record Record(String name, int type, int rrclass, long ttl, int ttlOffset, int rdataOffset,
            int rdataLength) {
    }

    private final byte[] raw;
    private final List<Question> questions;
    private final List<Record> answers;
    private final List<Record> authorities;
    private final List<Record> additionals;
    private final int questionEnd;

    private DnsMessage(byte[] raw, List<Question> questions, List<Record> answers, List<Record> authorities,
            List<Record> additionals, int questionEnd) {
        this.raw = raw;
        this.questions = questions;
        this.answers = answers;
        this.authorities = authorities;
        this.additionals = additionals;
        this.questionEnd = questionEnd;
    }

    /** Reads a whole message; trailing bytes after the last record are refused too. */
    public static DnsMessage parse(byte[] b) throws Malformed {
        if (b.length < HEADER) {
            throw new Malformed("shorter than a DNS header (" + b.length + " bytes)", b);
        }
        if (b.length > 65535) {
            throw new Malformed("longer than any DNS message (" + b.length + " bytes)", b);
        }
        int qd = u16(b, 4);
        int an = u16(b, 6);
        int ns = u16(b, 8);
        int ar = u16(b, 10);
        // Each question takes at least 5 bytes and each record 11: counts beyond the bytes are lies.
        if (HEADER + 5L * qd + 11L * (an + ns + ar) > b.length) {
            throw new Malformed("section counts (" + qd + "/" + an + "/" + ns + "/" + ar + ") exceed the "
                    + b.length + " bytes", b);
        }
        int[] pos = {HEADER};
        List<Question> questions = new ArrayList<>(qd);
        for (int i = 0; i < qd; i++) {
            String name = name(b, pos);
            need(b, pos[0], 4);
            questions.add(new Question(name, u16(b, pos[0]), u16(b, pos[0] + 2)));
            pos[0] += 4;
        }
        int questionEnd = pos[0];
        List<Record> answers = records(b, pos, an);
        List<Record> authorities = records(b, pos, ns);
        List<Record> additionals = records(b, pos, ar);
        if (pos[0] != b.length) {
            throw new Malformed((b.length - pos[0]) + " bytes after the last record", b);
        }
        return new DnsMessage(b, List.copyOf(questions), answers, authorities, additionals, questionEnd);
    }

    /** {@link #parse}, or null for bytes that are not a message (answers we then ignore). */
    public static DnsMessage parseQuietly(byte[] b) {
        try {
            return parse(b);
        } catch (Malformed e) {
            return null;
        }
    }

    private static List<Record> records(byte[] b, int[] pos, int count) throws Malformed {
        List<Record> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            String name = name(b, pos);
            need(b, pos[0], 10);
            int p = pos[0];
            int rdlength = u16(b, p + 8);
            need(b, p + 10, rdlength);
            out.add(new Record(name, u16(b, p), u16(b, p + 2), u32(b, p + 4), p + 4, p + 10, rdlength));
            pos[0] = p + 10 + rdlength;
        }
        return List.copyOf(out);
    }

    /**
     * Reads a name at {@code pos[0]} and moves past it. A pointer must point before the start of the
     * part of the name being read, so every jump goes strictly backwards from the last one: chains
     * end, loops are impossible. Bytes of a label other than letters, digits, '-', '_' and '*' are
     * written as \DDD, so such a name never equals a host name.
     */
    static String name(byte[] b, int[] pos) throws Malformed {
        StringBuilder out = new StringBuilder();
        int p = pos[0];
        int partStart = p;
        int wire = 0;
        boolean jumped = false;
        while (true) {
            need(b, p, 1);
            int len = b[p] & 0xff;
            if ((len & 0xc0) == 0xc0) {
                need(b, p, 2);
                int target = ((len & 0x3f) << 8) | (b[p + 1] & 0xff);
                if (target >= partStart) {
                    throw new Malformed("compression pointer at " + p + " to " + target
                            + " does not point backwards (a loop or forward reference)", b);
                }
                if (!jumped) {
                    pos[0] = p + 2;
                    jumped = true;
                }
                p = target;
                partStart = target;
                continue;
            }
            if ((len & 0xc0) != 0) {
                throw new Malformed("label type 0x" + Integer.toHexString(len & 0xc0) + " at " + p
                        + " is not supported", b);
            }
            wire += len + 1;
            if (wire > MAX_NAME) {
                throw new Malformed("name longer than " + MAX_NAME + " bytes", b);
            }
            if (len == 0) {
                if (!jumped) {
                    pos[0] = p + 1;
                }
                return out.toString();
            }
            need(b, p + 1, len);
            if (!out.isEmpty()) {
                out.append('.');
            }
            for (int i = p + 1; i <= p + len; i++) {
                int c = b[i] & 0xff;
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
                        || c == '_' || c == '*') {
                    out.append((char) c);
                } else {
                    out.append('\\').append(String.format("%03d", c));
                }
            }
            p += len + 1;
        }
    }

    private static void need(byte[] b, int at, int n) throws Malformed {
        if (at < 0 || n < 0 || at + n > b.length) {
            throw new Malformed("truncated: " + n + " bytes needed at " + at + " of " + b.length, b);
        }
    }

    static int u16(byte[] b, int at) {
        return ((b[at] & 0xff) << 8) | (b[at + 1] & 0xff);
    }

    static long u32(byte[] b, int at) {
        return ((long) u16(b, at) << 16) | u16(b, at + 2);
    }

    // ------------------------------------------------------------------------------- header

    public int id() {
        return u16(raw, 0);
    }

    public boolean response() {
        return (raw[2] & 0x80) != 0;
    }

    public int opcode() {
        return (raw[2] >> 3) & 0x0f;
    }

    public boolean truncated() {
        return (raw[2] & 0x02) != 0;
    }

    public boolean recursionDesired() {
        return (raw[2] & 0x01) != 0;
    }

    public int rcode() {
        return raw[3] & 0x0f;
    }

    public List<Question> questions() {
        return questions;
    }

    public List<Record> answers() {
        return answers;
    }

    public List<Record> authorities() {
        return authorities;
    }

    public List<Record> additionals() {
        return additionals;
    }

    /** The message as received (do not modify). */
    public byte[] raw() {
        return raw;
    }

    /** The largest UDP answer the client accepts: its EDNS payload size within 512..4096, else 512. */
    public int udpLimit() {
        for (Record r : additionals) {
            if (r.type() == TYPE_OPT) {
                return Math.max(MIN_UDP, Math.min(MAX_UDP, r.rrclass()));
            }
        }
        return MIN_UDP;
    }

    /** The bytes of the question section, as the client wrote them. */
    byte[] questionBytes() {
        byte[] q = new byte[questionEnd - HEADER];
        System.arraycopy(raw, HEADER, q, 0, q.length);
        return q;
    }

    /**
     * How long this answer may be cached, in seconds: the smallest TTL of its answers (OPT records
     * aside); for a negative answer (NXDOMAIN or no data) the SOA's minimum, as RFC 2308; empty when
     * it must not be cached (truncated, a failure, a negative answer without SOA).
     */
    public OptionalInt cacheTtl() {
        if (!response() || truncated() || (rcode() != NOERROR && rcode() != NXDOMAIN)) {
            return OptionalInt.empty();
        }
        long ttl = Long.MAX_VALUE;
        for (Record r : answers) {
            ttl = Math.min(ttl, r.ttl());
        }
        if (answers.isEmpty()) {
            for (Record r : authorities) {
                if (r.type() == TYPE_SOA && r.rdataLength() >= 20) {
                    long minimum = u32(raw, r.rdataOffset() + r.rdataLength() - 4);
                    ttl = Math.min(ttl, Math.min(r.ttl(), minimum));
                }
            }
        }
        return ttl == Long.MAX_VALUE ? OptionalInt.empty() : OptionalInt.of((int) Math.min(ttl, Integer.MAX_VALUE));
    }

    /** The IPv4 or IPv6 addresses answered for the question's name (CNAME chains followed by name). */
    public List<byte[]> addresses(int type) {
        List<byte[]> out = new ArrayList<>();
        int size = type == TYPE_A ? 4 : 16;
        for (Record r : answers) {
            if (r.type() == type && r.rrclass() == CLASS_IN && r.rdataLength() == size) {
                byte[] a = new byte[size];
                System.arraycopy(raw, r.rdataOffset(), a, 0, size);
                out.add(a);
            }
        }
        return out;
    }

    // ------------------------------------------------------------------------------- writing

    /** A copy with another id. */
    public static byte[] withId(byte[] message, int id) {
        byte[] out = message.clone();
        out[0] = (byte) (id >> 8);
        out[1] = (byte) id;
        return out;
    }

    /**
     * A cached answer for a new client: its id, its question (same name, maybe in other case), and
     * every TTL lowered by the time it spent in the cache.
     */
    static byte[] reuse(DnsMessage cached, DnsMessage query, long ageSeconds) {
        byte[] out = withId(cached.raw, query.id());
        byte[] q = query.questionBytes();
        if (q.length == cached.questionEnd - HEADER) {
            System.arraycopy(q, 0, out, HEADER, q.length);
        }
        for (List<Record> section : List.of(cached.answers, cached.authorities, cached.additionals)) {
            for (Record r : section) {
                if (r.type() == TYPE_OPT) {
                    continue; // its "TTL" holds EDNS flags
                }
                long ttl = Math.max(0, r.ttl() - ageSeconds);
                out[r.ttlOffset()] = (byte) (ttl >> 24);
                out[r.ttlOffset() + 1] = (byte) (ttl >> 16);
                out[r.ttlOffset() + 2] = (byte) (ttl >> 8);
                out[r.ttlOffset() + 3] = (byte) ttl;
            }
        }
        return out;
    }

    /**
     * Fits an answer into a UDP datagram of {@code limit} bytes: unchanged when it fits, else the
     * header and question with TC set and no records, so the client asks again over TCP.
     */
    public static byte[] fitUdp(byte[] answer, int limit) {
        if (answer.length <= limit) {
            return answer;
        }
        try {
            DnsMessage m = parse(answer);
            byte[] out = new byte[m.questionEnd];
            System.arraycopy(answer, 0, out, 0, m.questionEnd);
            out[2] |= 0x02;
            for (int i = 6; i < 12; i++) {
                out[i] = 0;
            }
            return out;
        } catch (Malformed e) {
            return header(u16(answer, 0), answer[2] & 0x79, SERVFAIL);
        }
    }

    /** A header-only answer (FORMERR to an unreadable query, where only its id could be read). */
    public static byte[] header(int id, int flagsByte, int rcode) {
        byte[] out = new byte[HEADER];
        out[0] = (byte) (id >> 8);
        out[1] = (byte) id;
        out[2] = (byte) (flagsByte | 0x80);
        out[3] = (byte) (0x80 | (rcode & 0x0f)); // RA
        return out;
    }

    /** An answer to {@code query} with the question and no record (errors, NXDOMAIN, no data). */
    public static byte[] answer(DnsMessage query, int rcode, boolean authoritative) {
        return answer(query, rcode, authoritative, List.of(), 0, 0);
    }

    /**
     * An answer to {@code query}: its question, then one record per address of {@code type}, each
     * named by a pointer to the question's name, with {@code ttl}.
     */
    public static byte[] answer(DnsMessage query, int rcode, boolean authoritative, List<byte[]> addresses, int type,
            int ttl) {
        byte[] q = query.questionBytes();
        int rdlength = type == TYPE_A ? 4 : 16;
        List<byte[]> fitting = addresses.stream().filter(a -> a.length == rdlength).toList();
        byte[] out = new byte[HEADER + q.length + fitting.size() * (12 + rdlength)];
        out[0] = query.raw[0];
        out[1] = query.raw[1];
        out[2] = (byte) (0x80 | (query.opcode() << 3) | (authoritative ? 0x04 : 0) | (query.raw[2] & 0x01));
        out[3] = (byte) (0x80 | (rcode & 0x0f));
        out[5] = (byte) query.questions.size();
        out[6] = (byte) (fitting.size() >> 8);
        out[7] = (byte) fitting.size();
        System.arraycopy(q, 0, out, HEADER, q.length);
        int p = HEADER + q.length;
        for (byte[] a : fitting) {
            out[p] = (byte) 0xc0;
            out[p + 1] = HEADER; // the question's name
            out[p + 2] = (byte) (type >> 8);
            out[p + 3] = (byte) type;
            out[p + 5] = CLASS_IN;
            out[p + 6] = (byte) (ttl >> 24);
            out[p + 7] = (byte) (ttl >> 16);
            out[p + 8] = (byte) (ttl >> 8);
            out[p + 9] = (byte) ttl;
            out[p + 11] = (byte) rdlength;
            System.arraycopy(a, 0, out, p + 12, rdlength);
            p += 12 + rdlength;
        }
        return out;
    }

    /** A recursive query for {@code name} (the proxy's own lookups), or an exception if the name cannot be one. */
    public static byte[] query(int id, String name, int type) {
        String n = name.endsWith(".") ? name.substring(0, name.length() - 1) : name;
        byte[] ascii = n.getBytes(StandardCharsets.US_ASCII);
        byte[] out = new byte[HEADER + ascii.length + 2 + 4];
        out[0] = (byte) (id >> 8);
        out[1] = (byte) id;
        out[2] = 0x01; // RD
        out[5] = 1;
        int p = HEADER;
        int wire = 1;
        for (String label : n.split("\\.", -1)) {
            byte[] l = label.getBytes(StandardCharsets.US_ASCII);
            if (l.length == 0 || l.length > MAX_LABEL) {
                throw new IllegalArgumentException("not a DNS name: '" + name + "'");
            }
            wire += l.length + 1;
            out[p++] = (byte) l.length;
            System.arraycopy(l, 0, out, p, l.length);
            p += l.length;
        }
        if (wire > MAX_NAME) {
            throw new IllegalArgumentException("name longer than " + MAX_NAME + " bytes: '" + name + "'");
        }
        out[p++] = 0;
        out[p++] = (byte) (type >> 8);
        out[p++] = (byte) type;
        out[p++] = 0;
        out[p] = CLASS_IN;
        return out;
    }
}
