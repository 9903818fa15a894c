package dev.ambient.ztunnel.metrics;

import dev.ambient.hbone.Authority;
import java.net.InetSocketAddress;
import java.time.Duration;
import org.jboss.logging.Logger;

/** One line per connection, when it ends or is refused: who, where, how much, how it ended and why. */
public final class AccessLog {

    private static final Logger LOG = Logger.getLogger("dev.ambient.ztunnel.access");

    private AccessLog() {
    }

    public static void connection(String direction, InetSocketAddress src, String srcIdentity,
            InetSocketAddress dst, String dstIdentity, String via, long bytesFromClient, long bytesToClient,
            Duration duration, String outcome, String reason) {
        LOG.infof("%s src=%s src_identity=%s dst=%s dst_identity=%s via=%s bytes_received=%d bytes_sent=%d "
                + "duration_ms=%d outcome=%s reason=\"%s\"", direction, addr(src), srcIdentity, addr(dst),
                dstIdentity, via, bytesFromClient, bytesToClient, duration.toMillis(), outcome, reason);
    }

    private static String addr(InetSocketAddress a) {
        return a == null ? "-" : Authority.format(a); // [v6]:port, so the port is not read as a group
    }
}
