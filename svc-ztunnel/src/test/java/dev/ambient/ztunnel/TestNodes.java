package dev.ambient.ztunnel;

import dev.ambient.ztunnel.config.ZtunnelConfig;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.smallrye.config.PropertiesConfigSource;
import io.smallrye.config.SmallRyeConfig;
import io.smallrye.config.SmallRyeConfigBuilder;
import java.util.Map;

/** A {@link ZtunnelNode} in this JVM, configured through its real keys as Quarkus would bind them. */
public final class TestNodes {

    private TestNodes() {
    }

    public static ZtunnelNode start(Map<String, String> properties) throws Exception {
        SmallRyeConfig cfg = new SmallRyeConfigBuilder().withMapping(ZtunnelConfig.class)
                .withConverter(java.time.Duration.class, 100, new io.quarkus.runtime.configuration.DurationConverter())
                .withSources(new PropertiesConfigSource(properties, "test", 500)).build();
        return new ZtunnelNode(cfg.getConfigMapping(ZtunnelConfig.class), new SimpleMeterRegistry()).start();
    }
}
