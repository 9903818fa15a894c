package dev.ambient.zds;

/** Names for the errno values the ZDS transport meets, so failures read well in logs. */
final class Errno {

    private Errno() {
    }

    static String name(int errno) {
        return switch (errno) {
            case 1 -> "EPERM";
            case 2 -> "ENOENT";
            case 4 -> "EINTR";
            case 9 -> "EBADF";
            case 11 -> "EAGAIN";
            case 13 -> "EACCES";
            case 22 -> "EINVAL";
            case 24 -> "EMFILE";
            case 32 -> "EPIPE";
            case 90 -> "EMSGSIZE";
            case 98 -> "EADDRINUSE";
            case 103 -> "ECONNABORTED";
            case 104 -> "ECONNRESET";
            case 107 -> "ENOTCONN";
            case 111 -> "ECONNREFUSED";
            default -> "errno";
        };
    }
}
