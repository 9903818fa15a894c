package dev.ambient.zds;

import java.io.IOException;
import java.util.Collection;
import java.util.Set;
import java.util.TreeSet;

/**
 * The uids that may be at the other end of a ZDS connection: whoever the agent admits gets pod
 * network namespaces and can take over as the current ztunnel, and whatever agent the ztunnel
 * believes chooses which namespace it serves a pod's certificate in. The socket file's mode is the
 * first guard; this one holds when the mode does not (CAP_DAC_OVERRIDE, a mode loosened by hand, a
 * file replaced in a writable directory).
 */
public record AllowedPeers(Set<Long> uids) {

    public AllowedPeers {
        if (uids.isEmpty()) {
            throw new IllegalArgumentException("no uid allowed at the other end of ZDS: every peer would be refused");
        }
        uids = Set.copyOf(new TreeSet<>(uids));
    }

    /** The default on both sides: the agent and the ztunnel run as root. */
    public static AllowedPeers rootOnly() {
        return new AllowedPeers(Set.of(0L));
    }

    public static AllowedPeers of(Collection<Long> uids) {
        return new AllowedPeers(Set.copyOf(uids));
    }

    /** Asks the kernel who is at the other end of {@code socket} (nothing is read from it) and decides. */
    public PeerCheck check(ZdsSocket socket) {
        PeerCredentials peer;
        try {
            peer = socket.peerCredentials();
        } catch (IOException e) {
            return new PeerCheck.Refused("no_credentials", "the kernel cannot say who the peer is: " + e.getMessage());
        }
        if (!uids.contains(peer.uid())) {
            return new PeerCheck.Refused("uid", peer + ": uid " + peer.uid() + " is not among the allowed uids " + this);
        }
        return new PeerCheck.Admitted(peer);
    }

    @Override
    public String toString() {
        return new TreeSet<>(uids).toString();
    }
}
