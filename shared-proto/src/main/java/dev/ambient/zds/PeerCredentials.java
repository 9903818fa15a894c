package dev.ambient.zds;

/**
 * The process at the other end of a ZDS connection, as the kernel recorded it (SO_PEERCRED): it
 * cannot be claimed in a message, so it is what both sides decide on before believing one.
 *
 * @param pid 0 when the peer is in a pid namespace this process cannot see
 * @param uid the overflow uid (65534) when the peer's uid has no mapping in our user namespace
 */
public record PeerCredentials(int pid, long uid, long gid) {

    @Override
    public String toString() {
        return "pid " + pid + " uid " + uid + " gid " + gid;
    }
}
