package dev.ambient.cni.redirect;

import dev.ambient.hbone.Authority;
import java.net.InetAddress;
import java.net.UnknownHostException;

/**
 * What the in-pod rules redirect where. Istio's ports and mark by default: outbound capture
 * 15001, inbound plaintext 15006, HBONE 15008 left alone, the ztunnel's own sockets marked 0x539.
 *
 * @param probeSource kubelet probes to a pod's IPv4 addresses arrive from this address (the host
 *     SNATs them to it) and are never redirected
 * @param probeSourceIpv6 the same for probes to a pod's IPv6 addresses (kept in the compressed form
 *     ip6tables-save prints, so the node's rules can be compared as text)
 * @param dnsPort the ztunnel's DNS proxy: the pod's DNS queries (UDP and TCP to port 53) go there;
 *     0 leaves DNS alone
 * @param replyMark with {@code replyMarkMask}: the connection mark of the ztunnel's connections to
 *     the application, restored onto the application's packets (Istio's 0x111/0xfff)
 * @param replyTable the routing table those packets look up: {@code local default dev lo}
 */
public record RedirectSettings(int outboundPort, int inboundPort, int hbonePort, int mark, String probeSource,
        String probeSourceIpv6, int dnsPort, int replyMark, int replyMarkMask, int replyTable) {

    /** Istio's IPv6 probe source, as its CNI agent SNATs kubelet probes over IPv6. */
    public static final String PROBE_SOURCE_IPV6 = "fd16:9254:7127:1337:ffff:ffff:ffff:ffff";

    public static RedirectSettings defaults() {
        return new RedirectSettings(15001, 15006, 15008, 0x539, "169.254.7.127", PROBE_SOURCE_IPV6, 15053, 0x111,
                0xfff, 100);
    }

    public RedirectSettings {
        if (replyMark == 0 || (replyMark & ~replyMarkMask) != 0) {
            throw new IllegalArgumentException("reply mark must be non-zero and inside its mask: "
                    + Integer.toHexString(replyMark) + "/" + Integer.toHexString(replyMarkMask));
        }
        if ((mark & replyMarkMask) == replyMark) {
            throw new IllegalArgumentException("the ztunnel's mark must differ from the reply mark under its mask");
        }
        if (replyTable < 1 || replyTable > 252) {
            throw new IllegalArgumentException("reply table must be 1..252 (253-255 are the kernel's): " + replyTable);
        }
        if (dnsPort < 0 || dnsPort > 65535) {
            throw new IllegalArgumentException("dns port out of range: " + dnsPort);
        }
        for (int p : new int[] {outboundPort, inboundPort, hbonePort}) {
            if (p < 1 || p > 65535) {
                throw new IllegalArgumentException("port out of range: " + p);
            }
        }
        if (mark == 0) {
            throw new IllegalArgumentException("mark must not be 0 (unmarked sockets would be exempt)");
        }
        if (probeSource == null || !probeSource.matches("\\d{1,3}(\\.\\d{1,3}){3}")) {
            throw new IllegalArgumentException("probe source must be an IPv4 address: " + probeSource);
        }
        probeSourceIpv6 = ipv6(probeSourceIpv6, "IPv6 probe source");
    }

    /** The address in ip6tables-save's form (compressed); an IPv6 literal only, never a name to look up. */
    static String ipv6(String text, String what) {
        if (text == null || !text.contains(":")) {
            throw new IllegalArgumentException(what + " must be an IPv6 address: " + text);
        }
        try {
            // A text with ':' is parsed as an IPv6 literal, never resolved.
            return Authority.host(InetAddress.getByName(text));
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException(what + " must be an IPv6 address: " + text);
        }
    }
}
