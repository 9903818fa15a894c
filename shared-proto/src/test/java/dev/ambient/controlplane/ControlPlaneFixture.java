package dev.ambient.controlplane;

import dev.ambient.identity.CertificateAuthority;
import dev.ambient.identity.Pem;
import io.netty.handler.ssl.SslContext;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * For tests of control-plane clients (this module's test jar): a mesh root written where a proxy
 * would have it mounted, a token file, TLS for a stand-in server of a given Service name, and the
 * client endpoint that checks it.
 */
public final class ControlPlaneFixture {

    public final CertificateAuthority mesh = CertificateAuthority.create("cluster.local", Duration.ofDays(1));
    public final Path rootFile;
    public final Path tokenFile;

    public ControlPlaneFixture(Path dir, String token) {
        try {
            Files.createDirectories(dir);
            rootFile = Files.writeString(dir.resolve("root-cert.pem"), Pem.encodeCertificate(mesh.root()));
            tokenFile = Files.writeString(dir.resolve("token"), token + "\n");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Server TLS with a certificate from the mesh root for {@code serverName}. */
    public SslContext serverTls(String serverName) {
        ServingKeyManager keys = new ServingKeyManager();
        keys.install(mesh.issueServer(List.of(serverName), Duration.ofHours(1)));
        return ControlPlaneTls.serverContext(keys);
    }

    /** A client endpoint that dials {@code target} and expects {@code serverName}. */
    public ControlPlaneEndpoint endpoint(String target, String serverName) {
        return ControlPlaneEndpoint.of(target, Optional.of(serverName), MeshRootFile.load(rootFile), tokenFile);
    }
}
