package dev.ambient.ca.root;

import dev.ambient.ca.config.CaConfig;
import dev.ambient.ca.config.NamespacedName;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.net.HttpURLConnection;
import java.nio.charset.StandardCharsets;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.jboss.logging.Logger;

/**
 * The root in Kubernetes Secrets, the way istiod keeps it: an Istio plug-in CA Secret
 * ({@code cacerts}) when an operator has made one, else the self-signed {@code istio-ca-secret},
 * created by the first replica that finds neither. When two replicas create it at once, the
 * loser gets 409 Conflict, reads the winner's and uses that.
 */
public final class SecretRootSource implements RootSource {

    private static final Logger LOG = Logger.getLogger(SecretRootSource.class);
    /** Istio's type for its self-signed CA Secret. */
    static final String SECRET_TYPE = "istio.io/ca-root";

    private final KubernetesClient client;
    private final NamespacedName rootSecret;
    private final NamespacedName pluginSecret;
    private final CaConfig config;

    public SecretRootSource(KubernetesClient client, CaConfig config) {
        this.client = client;
        this.config = config;
        this.rootSecret = NamespacedName.parse("ca.root-secret", config.rootSecret());
        this.pluginSecret = NamespacedName.parse("ca.plugin-secret", config.pluginSecret());
    }

    @Override
    public LoadedRoot load(boolean createIfAbsent) {
        Secret plugin = get(pluginSecret);
        if (plugin != null) {
            return fromSecret(plugin, pluginSecret);
        }
        Secret own = get(rootSecret);
        if (own != null) {
            return fromSecret(own, rootSecret);
        }
        if (!createIfAbsent) {
            return null;
        }
        return createOrAdopt(SelfSignedRoot.create(config.trustDomain(), config.rootLifetime()));
    }

    /**
     * Stores {@code files} as the root Secret; if another replica got there first (409), uses
     * the winner's root instead.
     */
    LoadedRoot createOrAdopt(Map<String, String> files) {
        Map<String, String> data = new HashMap<>();
        files.forEach((k, v) -> data.put(k, Base64.getEncoder().encodeToString(v.getBytes(StandardCharsets.US_ASCII))));
        Secret secret = new SecretBuilder()
                .withNewMetadata()
                    .withNamespace(rootSecret.namespace())
                    .withName(rootSecret.name())
                    .addToLabels("app.kubernetes.io/managed-by", "ambient-ca")
                .endMetadata()
                .withType(SECRET_TYPE)
                .withData(data)
                .build();
        try {
            client.secrets().inNamespace(rootSecret.namespace()).resource(secret).create();
        } catch (KubernetesClientException e) {
            if (e.getCode() != HttpURLConnection.HTTP_CONFLICT) {
                throw e;
            }
            Secret winner = get(rootSecret);
            if (winner == null) {
                throw new IllegalStateException("Secret " + rootSecret + " was created by someone else (409) "
                        + "but cannot be read back", e);
            }
            LOG.infof("another CA replica created Secret %s first; using its root", rootSecret);
            return fromSecret(winner, rootSecret);
        }
        LOG.infof("created a new self-signed root for trust domain %s in Secret %s",
                config.trustDomain(), rootSecret);
        return fromFiles(files, rootSecret);
    }

    @Override
    public String describe() {
        return "Secret " + pluginSecret + " (plug-in CA) or " + rootSecret;
    }

    private Secret get(NamespacedName ref) {
        return client.secrets().inNamespace(ref.namespace()).withName(ref.name()).get();
    }

    private LoadedRoot fromSecret(Secret secret, NamespacedName ref) {
        Map<String, String> files = new HashMap<>();
        if (secret.getStringData() != null) {
            files.putAll(secret.getStringData());
        }
        if (secret.getData() != null) {
            for (var entry : secret.getData().entrySet()) {
                try {
                    files.put(entry.getKey(), new String(Base64.getMimeDecoder().decode(
                            entry.getValue() == null ? "" : entry.getValue()), StandardCharsets.US_ASCII));
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("Secret " + ref + " key " + entry.getKey()
                            + " is not base64: " + e.getMessage(), e);
                }
            }
        }
        return fromFiles(files, ref);
    }

    private LoadedRoot fromFiles(Map<String, String> files, NamespacedName ref) {
        try {
            var authority = CaFiles.authority(files, config.trustDomain());
            List<X509Certificate> extras = new ArrayList<>(CaFiles.extraRoots(files));
            extras.addAll(CaFiles.extraRoots(config.extraTrustedRoots()));
            return LoadedRoot.of(authority, extras, "Secret " + ref);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("Secret " + ref + " is unusable: " + e.getMessage(), e);
        }
    }
}
