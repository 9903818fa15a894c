package dev.ambient.cni.redirect;

/**
 * What the in-pod rules redirect where. Istio's ports and mark by default: outbound capture
 * 15001, inbound plaintext 15006, HBONE 15008 left alone, the ztunnel's own sockets marked 0x539.
 *
 * @param probeSource kubelet probes arrive from this address (the host SNATs them to it) and are
 *     never redirected
 * @param dnsPort the ztunnel's DNS proxy: the pod's DNS queries (UDP and TCP to port 53) go there;
 *     0 leaves DNS alone
 */
public record RedirectSettings(int outboundPort, int inboundPort, int hbonePort, int mark, String probeSource,
        int dnsPort) {

    public static RedirectSettings defaults() {
        return new RedirectSettings(15001, 15006, 15008, 0x539, "169.254.7.127", 15053);
    }

    public RedirectSettings {
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
