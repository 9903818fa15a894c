package dev.ambient.ca.root;

import dev.ambient.ca.config.CaConfig;
import dev.ambient.identity.CertificateAuthority;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The root in a directory (standalone mode): {@code root-cert.pem} and {@code ca-key.pem}, plus
 * {@code cert-chain.pem} for an intermediate, created when the directory holds none of them.
 * {@code extra-trusted-roots.pem} there adds roots to trust during a rotation.
 */
public final class DirectoryRootSource implements RootSource {

    private final CaConfig config;
    private final Path dir;

    public DirectoryRootSource(CaConfig config) {
        this.config = config;
        this.dir = config.standalone().dir().toAbsolutePath();
    }

    @Override
    public LoadedRoot load(boolean createIfAbsent) {
        if (!createIfAbsent && !Files.exists(dir.resolve(CertificateAuthority.ROOT_CERT_FILE))) {
            return null;
        }
        CertificateAuthority authority = CertificateAuthority.loadOrCreate(dir, config.trustDomain(), config.rootLifetime());
        List<X509Certificate> extras = new ArrayList<>(
                CaFiles.extraRoots(Optional.of(dir.resolve(CaFiles.EXTRA_TRUSTED_ROOTS)).filter(Files::exists)));
        extras.addAll(CaFiles.extraRoots(config.extraTrustedRoots()));
        return LoadedRoot.of(authority, extras, "directory " + dir);
    }

    @Override
    public String describe() {
        return "directory " + dir;
    }
}
