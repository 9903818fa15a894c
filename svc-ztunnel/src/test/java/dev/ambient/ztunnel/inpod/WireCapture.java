package dev.ambient.ztunnel.inpod;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * tcpdump on a pod's host-side veth, written to a pcap file and read back here: every TCP
 * segment's ports and payload, so a test can say what really crossed the wire between pods.
 */
final class WireCapture implements AutoCloseable {

    /** One TCP segment: addresses, ports and payload. */
    record Segment(String src, int sport, String dst, int dport, byte[] payload) {
    }

    private final Process tcpdump;
    private final Path file;

    WireCapture(String iface, Path file) throws Exception {
        this.file = file;
        this.tcpdump = new ProcessBuilder("tcpdump", "-i", iface, "-nn", "--immediate-mode", "-U", "-w", file.toString(), "tcp")
                .redirectErrorStream(true).start();
        BufferedReader err = new BufferedReader(new InputStreamReader(tcpdump.getInputStream()));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        String line;
        while ((line = err.readLine()) != null && !line.contains("listening on")) {
            if (System.nanoTime() > deadline) {
                break;
            }
        }
        if (line == null) {
            throw new IllegalStateException("tcpdump did not start on " + iface);
        }
    }

    /** Stops the capture and parses it (Ethernet, IPv4 or IPv6, TCP). */
    List<Segment> stop() throws Exception {
        Thread.sleep(300); // the last segments reach the file (immediate mode: no kernel block timeout)
        tcpdump.destroy();
        tcpdump.waitFor(10, TimeUnit.SECONDS);
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        if (b.getInt(0) != 0xa1b2c3d4) {
            throw new IllegalStateException("not a little-endian microsecond pcap");
        }
        List<Segment> out = new ArrayList<>();
        int pos = 24;
        while (pos + 16 <= b.limit()) {
            int captured = b.getInt(pos + 8);
            int frame = pos + 16;
            pos = frame + captured;
            if (pos > b.limit() || captured < 54) {
                break;
            }
            ByteBuffer f = ByteBuffer.wrap(b.array(), frame, captured).slice().order(ByteOrder.BIG_ENDIAN);
            int type = Short.toUnsignedInt(f.getShort(12));
            String src;
            String dst;
            int tcp;
            int end;
            if (type == 0x0800) {
                if (f.get(23) != 6) {
                    continue;
                }
                src = ip(f, 26, 4);
                dst = ip(f, 30, 4);
                tcp = 14 + (f.get(14) & 0x0f) * 4;
                end = Math.min(14 + Short.toUnsignedInt(f.getShort(16)), captured);
            } else if (type == 0x86dd && captured >= 74) {
                if (f.get(20) != 6) { // next header TCP (our pods send no extension headers)
                    continue;
                }
                src = ip(f, 22, 16);
                dst = ip(f, 38, 16);
                tcp = 54;
                end = Math.min(54 + Short.toUnsignedInt(f.getShort(18)), captured);
            } else {
                continue;
            }
            int sport = Short.toUnsignedInt(f.getShort(tcp));
            int dport = Short.toUnsignedInt(f.getShort(tcp + 2));
            int dataOffset = ((f.get(tcp + 12) >> 4) & 0x0f) * 4;
            int start = tcp + dataOffset;
            byte[] payload = new byte[Math.max(0, end - start)];
            f.get(start, payload);
            out.add(new Segment(src, sport, dst, dport, payload));
        }
        return out;
    }

    /** The first payload bytes of each direction of each connection, keyed "src:port>dst:port". */
    static Map<String, byte[]> firstPayloads(List<Segment> segments) {
        Map<String, byte[]> first = new HashMap<>();
        for (Segment s : segments) {
            if (s.payload().length > 0) {
                first.putIfAbsent(s.src() + ":" + s.sport() + ">" + s.dst() + ":" + s.dport(), s.payload());
            }
        }
        return first;
    }

    /**
     * What the wire must show of one tunnelled connection: segments only between {@code client} and
     * {@code server}'s 15008, one connection whose two directions open with a TLS handshake record,
     * and {@code secret} never in the clear.
     */
    static void assertOnlyTlsTo15008(List<Segment> wire, String client, String server, String secret, String whatIfEmpty) {
        org.junit.jupiter.api.Assertions.assertFalse(wire.isEmpty(), "the capture saw the connection: " + whatIfEmpty);
        for (Segment s : wire) {
            boolean out = s.src().equals(client) && s.dst().equals(server) && s.dport() == 15008;
            boolean back = s.src().equals(server) && s.dst().equals(client) && s.sport() == 15008;
            org.junit.jupiter.api.Assertions.assertTrue(out || back, "unexpected segment on the wire: " + s);
        }
        Map<String, byte[]> first = firstPayloads(wire);
        org.junit.jupiter.api.Assertions.assertEquals(2, first.size(), "one connection, both directions: " + first.keySet());
        first.forEach((flow, bytes) -> {
            org.junit.jupiter.api.Assertions.assertEquals(0x16, bytes[0], flow + " starts with a TLS handshake record");
            org.junit.jupiter.api.Assertions.assertEquals(0x03, bytes[1], flow + " TLS version major");
        });
        String needle = secret;
        for (Segment s : wire) {
            org.junit.jupiter.api.Assertions.assertFalse(
                    new String(s.payload(), java.nio.charset.StandardCharsets.ISO_8859_1).contains(needle),
                    "the secret crossed the wire in the clear");
        }
    }

    /** Dotted quad, or RFC 5952 for IPv6 (as {@code Addresses.format} writes it). */
    private static String ip(ByteBuffer f, int at, int length) {
        byte[] raw = new byte[length];
        f.get(at, raw);
        try {
            return dev.ambient.ztunnel.state.Addresses.format(java.net.InetAddress.getByAddress(raw));
        } catch (java.net.UnknownHostException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() {
        tcpdump.destroyForcibly();
    }
}
