package dev.ambient.zds;

import java.util.OptionalInt;

/**
 * One ZDS packet as received: the serialized protobuf message and, when the sender attached
 * one, a file descriptor. The receiver owns that fd and must close it
 * ({@link FileDescriptors#close(int)}).
 */
public record ZdsPacket(byte[] payload, OptionalInt fd) {
}
