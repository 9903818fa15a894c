package dev.ambient.e2e;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What a pcap file (tcpdump {@code -w}, on {@code any} or one interface) holds of TCP: each
 * direction of each connection, its bytes put back in order from the segments (a packet seen on
 * two interfaces, a veth and its bridge, counts once), and whether those bytes are TLS 1.3 from
 * the first to the last record.
 */
final class TlsCapture {

    /** One direction of one TCP connection. */
    record Flow(String src, int srcPort, String dst, int dstPort) {
        @Override
        public String toString() {
            return src + ":" + srcPort + " -> " + dst + ":" + dstPort;
        }
    }

    /**
     * The in-order bytes of each flow opened during the capture (its SYN seen) that carried any;
     * connections already open when the capture began are only in {@link #raw}.
     */
    final Map<Flow, byte[]> streams = new LinkedHashMap<>();
    final byte[] raw;

    private TlsCapture(byte[] raw) {
        this.raw = raw;
    }

    static TlsCapture read(Path pcap) throws IOException {
        byte[] file = Files.readAllBytes(pcap);
        TlsCapture capture = new TlsCapture(file);
        ByteBuffer in = ByteBuffer.wrap(file);
        int magic = in.getInt(0);
        ByteOrder order = magic == 0xa1b2c3d4 || magic == 0xa1b23c4d ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
        in.order(order);
        int linkType = in.getInt(20);
        Map<Flow, TreeMap<Long, byte[]>> segments = new LinkedHashMap<>();
        Map<Flow, Long> firstByte = new LinkedHashMap<>();
        int at = 24;
        while (at + 16 <= file.length) {
            int captured = in.getInt(at + 8);
            int packet = at + 16;
            at = packet + captured;
            if (at > file.length) {
                break; // the last packet, cut by the end of the capture
            }
            int ip = switch (linkType) {
                case 1 -> in.order(ByteOrder.BIG_ENDIAN).getShort(packet + 12) == 0x0800 ? packet + 14 : -1; // Ethernet
                case 113 -> in.order(ByteOrder.BIG_ENDIAN).getShort(packet + 14) == 0x0800 ? packet + 16 : -1; // Linux SLL
                case 276 -> in.order(ByteOrder.BIG_ENDIAN).getShort(packet) == 0x0800 ? packet + 20 : -1; // Linux SLL2
                case 101, 12 -> packet; // raw IP
                default -> throw new IllegalArgumentException("link type " + linkType + " is not handled");
            };
            in.order(order);
            if (ip < 0 || (file[ip] >> 4) != 4 || file[ip + 9] != 6) {
                continue; // not IPv4 TCP
            }
            ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.BIG_ENDIAN);
            int ipHeader = (file[ip] & 0x0f) * 4;
            int ipLength = b.getShort(ip + 2) & 0xffff;
            int tcp = ip + ipHeader;
            int tcpHeader = ((file[tcp + 12] >> 4) & 0x0f) * 4;
            int payload = tcp + tcpHeader;
            int payloadLength = Math.min(ipLength - ipHeader - tcpHeader, at - payload);
            Flow flow = new Flow(address(file, ip + 12), b.getShort(tcp) & 0xffff, address(file, ip + 16),
                    b.getShort(tcp + 2) & 0xffff);
            long seq = b.getInt(tcp + 4) & 0xffffffffL;
            if ((file[tcp + 13] & 0x02) != 0) { // SYN: the connection's first byte comes next
                firstByte.putIfAbsent(flow, (seq + 1) & 0xffffffffL);
            }
            if (payloadLength <= 0) {
                continue;
            }
            byte[] data = new byte[payloadLength];
            System.arraycopy(file, payload, data, 0, payloadLength);
            segments.computeIfAbsent(flow, f -> new TreeMap<>()).putIfAbsent(seq, data);
        }
        segments.forEach((flow, bySeq) -> {
            Long start = firstByte.get(flow);
            if (start != null) {
                capture.streams.put(flow, reassemble(bySeq, start));
            }
        });
        return capture;
    }

    /** Contiguous bytes from {@code start} on (stops at the first gap; sequence wrap-around ignored). */
    private static byte[] reassemble(TreeMap<Long, byte[]> bySeq, long start) {
        List<byte[]> parts = new ArrayList<>();
        long next = start;
        int total = 0;
        for (var e : bySeq.entrySet()) {
            long seq = e.getKey();
            byte[] data = e.getValue();
            if (seq > next) {
                break;
            }
            int skip = (int) (next - seq);
            if (skip >= data.length) {
                continue; // a retransmission of bytes already taken
            }
            byte[] fresh = java.util.Arrays.copyOfRange(data, skip, data.length);
            parts.add(fresh);
            total += fresh.length;
            next = seq + data.length;
        }
        byte[] out = new byte[total];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    private static String address(byte[] file, int at) {
        return (file[at] & 0xff) + "." + (file[at + 1] & 0xff) + "." + (file[at + 2] & 0xff) + "." + (file[at + 3] & 0xff);
    }

    /**
     * Why {@code bytes} (one direction, from its first byte) is not a TLS 1.3 conversation, or null
     * when it is: nothing but TLS records (handshake, change_cipher_spec, alert, application_data,
     * record version 3.1 or 3.3), and, from a server, nothing in clear after the ServerHello (in
     * TLS 1.2 the certificate would follow in clear).
     */
    static String notTls13(byte[] bytes, boolean fromServer) {
        int at = 0;
        int records = 0;
        while (at + 5 <= bytes.length) {
            int type = bytes[at] & 0xff;
            int version = ((bytes[at + 1] & 0xff) << 8) | (bytes[at + 2] & 0xff);
            int length = ((bytes[at + 3] & 0xff) << 8) | (bytes[at + 4] & 0xff);
            if (type < 20 || type > 23 || (version != 0x0303 && version != 0x0301) || length > (1 << 14) + 256) {
                return "record " + records + " at byte " + at + " is not TLS (type " + type + ", version "
                        + Integer.toHexString(version) + "): " + printable(bytes, at);
            }
            if (records == 0 && type != 22) {
                return "the first record is not a handshake but type " + type;
            }
            if (fromServer && records > 0 && type == 22) {
                return "the server sent a second handshake record in clear (not TLS 1.3)";
            }
            at += 5 + length;
            records++;
        }
        return records == 0 ? "no complete TLS record" : null;
    }

    private static String printable(byte[] bytes, int from) {
        StringBuilder s = new StringBuilder();
        for (int i = from; i < Math.min(bytes.length, from + 80); i++) {
            s.append(bytes[i] >= 32 && bytes[i] < 127 ? (char) bytes[i] : '.');
        }
        return s.toString();
    }

    /** True when {@code text} appears anywhere in the captured file, in ASCII. */
    boolean contains(String text) {
        byte[] needle = text.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        outer:
        for (int i = 0; i + needle.length <= raw.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (raw[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return true;
        }
        return false;
    }
}
