package dev.ambient.controlplane;

import io.grpc.CallCredentials;
import io.grpc.Metadata;
import io.grpc.SecurityLevel;
import io.grpc.Status;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Executor;

/**
 * The caller's service-account token, sent as {@code authorization: Bearer <token>} with every
 * control-plane call (CSRs, the discovery stream). Read from its file on each call: the kubelet
 * rotates projected tokens. Never sent over a connection without privacy: the call fails instead.
 */
public final class ServiceAccountToken extends CallCredentials {

    public static final Metadata.Key<String> AUTHORIZATION =
            Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
    /** A projected token is about 1 KiB; a file much bigger is not one. */
    private static final long MAX_BYTES = 16 * 1024;

    private final Path file;

    public ServiceAccountToken(Path file) {
        this.file = file;
    }

    public Path file() {
        return file;
    }

    @Override
    public void applyRequestMetadata(RequestInfo info, Executor appExecutor, MetadataApplier applier) {
        if (info.getSecurityLevel() != SecurityLevel.PRIVACY_AND_INTEGRITY) {
            applier.fail(Status.UNAUTHENTICATED.withDescription(
                    "refusing to send the service-account token over a connection without TLS"));
            return;
        }
        appExecutor.execute(() -> { // file I/O: off the event loop
            try {
                Metadata headers = new Metadata();
                headers.put(AUTHORIZATION, "Bearer " + read());
                applier.apply(headers);
            } catch (IOException | IllegalStateException e) {
                applier.fail(Status.UNAUTHENTICATED.withDescription("cannot read the service-account token "
                        + file + ": " + e.getMessage()).withCause(e));
            }
        });
    }

    /** The token, as it is in the file now. */
    public String read() throws IOException {
        if (Files.size(file) > MAX_BYTES) {
            throw new IllegalStateException("larger than " + MAX_BYTES + " bytes");
        }
        String token = Files.readString(file, StandardCharsets.US_ASCII).strip();
        if (token.isEmpty()) {
            throw new IllegalStateException("the file is empty");
        }
        return token;
    }
}
