package dev.ambient.controlplane;

import dev.ambient.identity.Pem;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Objects;
import org.jboss.logging.Logger;

/**
 * The mesh's root certificates from a mounted file (the {@code istio-ca-root-cert} ConfigMap,
 * key {@code root-cert.pem}; several certificates during a root rotation): what a control-plane
 * client verifies svc-ca and svc-xds against. Never fetched over the network.
 *
 * <p>Read at start, where a missing, unreadable or empty file is an error; read again when it
 * changes (the kubelet swaps a ConfigMap volume's files when the ConfigMap changes). A later
 * bad read keeps the roots read before and is logged once.
 */
public final class MeshRootFile {

    private static final Logger LOG = Logger.getLogger(MeshRootFile.class);

    private record Read(Object fileKey, long modified, long size, List<X509Certificate> roots) {}

    private final Path path;
    private volatile Read read;
    private String lastProblem; // under this

    private MeshRootFile(Path path, Read read) {
        this.path = path;
        this.read = read;
    }

    /**
     * Reads the roots in {@code path}.
     *
     * @throws IllegalStateException saying what is wrong, when there is no usable root there
     */
    public static MeshRootFile load(Path path) {
        try {
            return new MeshRootFile(path, read(path));
        } catch (IOException | IllegalArgumentException e) {
            throw new IllegalStateException("cannot read the mesh root certificate " + path + " (" + e.getMessage()
                    + "): the control plane cannot be verified without it; mount the istio-ca-root-cert ConfigMap "
                    + "there or set the root-cert-file key", e);
        }
    }

    public Path path() {
        return path;
    }

    /** The roots, read again first when the file changed. Cheap: one stat when it did not. */
    public List<X509Certificate> roots() {
        Read last = read;
        try {
            BasicFileAttributes attributes = Files.readAttributes(path, BasicFileAttributes.class);
            if (Objects.equals(attributes.fileKey(), last.fileKey()) && attributes.size() == last.size()
                    && attributes.lastModifiedTime().toMillis() == last.modified()) {
                return last.roots();
            }
            Read fresh = read(path);
            synchronized (this) {
                read = fresh;
                lastProblem = null;
            }
            LOG.infof("mesh root certificate %s changed: %d root(s)", path, fresh.roots().size());
            return fresh.roots();
        } catch (IOException | IllegalArgumentException e) {
            synchronized (this) {
                if (!Objects.equals(lastProblem, e.getMessage())) {
                    LOG.warnf("cannot read the mesh root certificate %s again (%s); keeping the %d root(s) read before",
                            path, e.getMessage(), last.roots().size());
                    lastProblem = e.getMessage();
                }
            }
            return last.roots();
        }
    }

    private static Read read(Path path) throws IOException {
        BasicFileAttributes attributes = Files.readAttributes(path, BasicFileAttributes.class);
        List<X509Certificate> roots = Pem.decodeCertificates(Files.readString(path, StandardCharsets.ISO_8859_1));
        if (roots.isEmpty()) {
            throw new IllegalArgumentException("it holds no PEM certificate");
        }
        return new Read(attributes.fileKey(), attributes.lastModifiedTime().toMillis(), attributes.size(), List.copyOf(roots));
    }
}
