package dev.ambient.ztunnel.inpod;

import dev.ambient.ztunnel.ZtunnelNode;
import dev.ambient.ztunnel.config.ZtunnelConfig;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.smallrye.config.PropertiesConfigSource;
import io.smallrye.config.SmallRyeConfig;
import io.smallrye.config.SmallRyeConfigBuilder;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/** A ztunnel in in-pod mode inside this JVM, configured through its real keys, for the in-pod tests. */
final class InpodNode {

    private InpodNode() {
    }

    /**
     * @param config the standalone mesh file
     * @param zdsSocket the node agent's ZDS socket (played by the test)
     * @param extra further keys, overriding the defaults here
     */
    static ZtunnelNode start(Path config, Path zdsSocket, Path caDir, Map<String, String> extra) throws Exception {
        Map<String, String> p = new HashMap<>();
        p.put("ztunnel.node-name", "node-a");
        p.put("ztunnel.node-ip", "127.0.0.1");
        p.put("ztunnel.local-config", config.toString());
        p.put("ztunnel.identity.ca-dir", caDir.toString());
        p.put("ztunnel.ports.socks5", "0");
        p.put("ztunnel.ports.admin", "0");
        p.put("ztunnel.dataplane.threads", "2");
        p.put("ztunnel.inpod.enabled", "true");
        p.put("ztunnel.inpod.zds-socket", zdsSocket.toString());
        p.put("ztunnel.inpod.reconnect-initial-backoff", "50ms");
        p.put("ztunnel.inpod.reconnect-max-backoff", "500ms");
        p.put("ztunnel.inpod.drain-timeout", "2s");
        p.putAll(extra);
        SmallRyeConfig cfg = new SmallRyeConfigBuilder().withMapping(ZtunnelConfig.class)
                .withConverter(java.time.Duration.class, 100, new io.quarkus.runtime.configuration.DurationConverter())
                .withSources(new PropertiesConfigSource(p, "test", 500)).build();
        return new ZtunnelNode(cfg.getConfigMapping(ZtunnelConfig.class), new SimpleMeterRegistry()).start();
    }
}
