package dev.ambient.ztunnel;

import dev.ambient.net.QuarkusEndpoints;
import dev.ambient.ztunnel.config.ZtunnelConfig;
import dev.ambient.ztunnel.guard.OwnListeners;
import dev.ambient.ztunnel.state.LocalConfigException;
import io.micrometer.core.instrument.MeterRegistry;
import dev.ambient.ztunnel.inpod.ZdsClient;
import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.annotation.Priority;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.eclipse.microprofile.config.Config;
import org.eclipse.microprofile.config.ConfigProvider;
import org.jboss.logging.Logger;

/** Runs this process's {@link ZtunnelNode} for the life of the Quarkus application. */
@ApplicationScoped
public class Ztunnel {

    private static final Logger LOG = Logger.getLogger(Ztunnel.class);

    private final ZtunnelConfig config;
    private final MeterRegistry registry;
    private volatile ZtunnelNode node;

    public Ztunnel(ZtunnelConfig config, MeterRegistry registry) {
        this.config = config;
        this.registry = registry;
    }

    // Before the admin server, which reads the node.
    void onStart(@Observes @Priority(10) StartupEvent event) throws LocalConfigException {
        node = new ZtunnelNode(config, registry, quarkusListeners(ConfigProvider.getConfig())).start();
        if (config.inpod().exitWhenReplaced()) {
            node.zds().ifPresent(z -> z.handedOver().thenRun(() -> {
                LOG.info("replaced by a newer ztunnel and drained: exiting (ztunnel.inpod.exit-when-replaced)");
                Quarkus.asyncExit(0);
            }));
        }
    }

    /** The probe (15021) and metrics (15020) ports served in this process (admin/EndpointListeners). */
    static List<OwnListeners.Listener> quarkusListeners(Config c) {
        List<OwnListeners.Listener> out = new ArrayList<>();
        QuarkusEndpoints.probes(c).ifPresent(e -> out.add(new OwnListeners.Listener("readiness", e.port(), host(e.host()))));
        QuarkusEndpoints.metrics(c).ifPresent(e -> out.add(new OwnListeners.Listener("metrics", e.port(), host(e.host()))));
        return out;
    }

    /** A host setting as an address; one that does not resolve counts as every address (refuses more). */
    private static OwnListeners.Where host(String host) {
        try {
            return new OwnListeners.Where.At(InetAddress.getByName(host));
        } catch (UnknownHostException e) {
            return new OwnListeners.Where.At(InetAddress.ofLiteral("0.0.0.0"));
        }
    }

    void onStop(@Observes ShutdownEvent event) {
        if (node != null) {
            awaitHandOverDrain(node);
            node.close();
        }
    }

    /** Stopped while draining after a hand-over (the rolling update deleting this pod): let the drain finish. */
    private void awaitHandOverDrain(ZtunnelNode n) {
        n.zds().filter(ZdsClient::replaced).ifPresent(z -> {
            try {
                z.handedOver().get(config.inpod().drainTimeout().toMillis() + 1_000, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (ExecutionException | TimeoutException e) {
                LOG.warnf("stopping before the hand-over drain finished: %s", e);
            }
        });
    }

    /** The running node; null until started. */
    public ZtunnelNode node() {
        return node;
    }
}
