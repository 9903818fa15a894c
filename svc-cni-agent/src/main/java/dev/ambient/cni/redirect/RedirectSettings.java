package dev.ambient.cni.redirect;

/**
 * What the in-pod rules redirect where. Istio's ports and mark by default: outbound capture
 * 15001, inbound plaintext 15006, HBONE 15008 left alone, the ztunnel's own sockets marked 0x539.
 *
 * @param probeSource kubelet probes arrive from this address (the host SNATs them to it) and are
 *     never redirected
 * @param dnsPort the ztunnel's DNS proxy: the pod's DNS queries (UDP and TCP to port 53) go there;
 *     0 leaves DNS alone
 * @param replyMark with {@code replyMarkMask}: the connection mark of the ztunnel's connections to
 *     the application, restored onto the application's packets (Istio's 0x111/0xfff)
 * @param replyTable the routing table those packets look up: {@code local default dev lo}
 */
public record RedirectSettings(int outboundPort, int inboundPort, int hbonePort, int mark, String probeSource,
        int dnsPort, int replyMark, int replyMarkMask, int replyTable) {

    public static RedirectSettings defaults() {
        return new RedirectSettings(15001, 15006, 15008, 0x539, "169.254.7.127", 15053, 0x111, 0xfff, 100);
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
    }
}
