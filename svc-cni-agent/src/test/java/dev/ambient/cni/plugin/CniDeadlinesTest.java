package dev.ambient.cni.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.cni.CniNode;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The deadlines around a CNI ADD nest: kubelet > plugin > agent's answer > ztunnel wait > one ZDS ack. */
class CniDeadlinesTest {

    @Test
    void theDefaultsNestAndThePluginWaitsLongerThanTheAgentTakes() {
        CniDeadlines d = CniNode.Settings.of("node-a", Path.of("/tmp")).deadlines().requireNested();
        assertEquals(Duration.ofSeconds(40), d.agentAnswer(), "5 s lookup + 30 s ztunnel wait + 5 s for the rules");
        assertEquals(45, d.pluginTimeoutSeconds());
        assertTrue(d.ackTimeout().compareTo(d.ztunnelWait()) < 0);
        assertTrue(Duration.ofSeconds(d.pluginTimeoutSeconds()).compareTo(CniDeadlines.KUBELET) < 0);
        // A longer ztunnel wait moves the plugin's timeout with it (the agent writes the plugin's conf).
        CniDeadlines longer = new CniDeadlines(Duration.ofSeconds(5), Duration.ofSeconds(60), Duration.ofSeconds(10));
        assertEquals(75, longer.pluginTimeoutSeconds());
        assertEquals(11, new CniDeadlines(Duration.ofMillis(200), Duration.ofMillis(500), Duration.ofMillis(100))
                .pluginTimeoutSeconds(), "10.7 s rounds the plugin's timeout up");
    }

    @Test
    void deadlinesThatDoNotNestAreRefusedNamingTheKeys() {
        var ack = assertThrows(IllegalArgumentException.class,
                () -> new CniDeadlines(Duration.ofSeconds(5), Duration.ofSeconds(10), Duration.ofSeconds(10)).requireNested());
        assertTrue(ack.getMessage().contains("cni.ack-timeout") && ack.getMessage().contains("cni.ztunnel-wait"),
                ack.getMessage());
        var kubelet = assertThrows(IllegalArgumentException.class,
                () -> new CniDeadlines(Duration.ofSeconds(5), Duration.ofSeconds(115), Duration.ofSeconds(10)).requireNested());
        assertTrue(kubelet.getMessage().contains("runtime request timeout"), kubelet.getMessage());
    }
}
