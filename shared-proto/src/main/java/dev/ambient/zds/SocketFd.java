package dev.ambient.zds;

import java.nio.channels.ClosedChannelException;

/**
 * A socket fd that one thread may close while another is blocked on it. close() shuts the
 * socket down (which wakes a blocked recvmsg/accept) and releases the fd only once no call is
 * using it any more, so the number can never be reused under a running call.
 */
final class SocketFd {

    private final int fd;
    private int users;
    private boolean closed;
    private boolean released;

    SocketFd(int fd) {
        this.fd = fd;
    }

    /** Starts a call on the fd; pair with {@link #release()}. */
    synchronized int acquire() throws ClosedChannelException {
        if (closed) {
            throw new ClosedChannelException();
        }
        users++;
        return fd;
    }

    void release() {
        boolean last;
        synchronized (this) {
            users--;
            last = closed && users == 0 && !released;
            if (last) {
                released = true;
            }
        }
        if (last) {
            UnixSeqpacket.close(fd);
        }
    }

    synchronized boolean isClosed() {
        return closed;
    }

    void close() {
        boolean now;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            now = users == 0;
            if (now) {
                released = true;
            }
        }
        if (now) {
            UnixSeqpacket.close(fd);
        } else {
            UnixSeqpacket.shutdown(fd);
        }
    }
}
