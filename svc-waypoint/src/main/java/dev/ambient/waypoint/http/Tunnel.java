package dev.ambient.waypoint.http;

import dev.ambient.identity.SpiffeId;
import dev.ambient.proto.workload.Service;
import dev.ambient.proto.workload.Workload;
import java.net.InetSocketAddress;

/**
 * One accepted HBONE CONNECT: who sent it and what it is for. The peer is the source workload's
 * identity (its ztunnel connects with the source's certificate).
 *
 * @param service the service addressed by VIP, or null when a workload is addressed directly
 * @param workload the workload addressed directly, or null
 * @param target the CONNECT {@code :authority}
 * @param source where the HBONE connection came from: a client's Forwarded header is never believed
 *     here (only a destination's own waypoint is, and a waypoint's clients are never that)
 * @param sourceWorkload the client's workload when known, or null (metric labels say "unknown")
 * @param peerCertificateSha256 hex SHA-256 of the peer's certificate, or null when unknown
 */
public record Tunnel(Service service, Workload workload, InetSocketAddress target, SpiffeId peer,
        InetSocketAddress source, Workload sourceWorkload, String peerCertificateSha256) {

    public String describe() {
        return service != null ? service.getHostname() + ":" + target.getPort()
                : workload.getUid() + " " + target.getAddress().getHostAddress() + ":" + target.getPort();
    }
}
