package dev.ambient.cni.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.cni.CniNode;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Installing into a node's CNI directories (here temporary ones shaped like /opt/cni/bin and /etc/cni/net.d). */
class PluginInstallerTest {

    static final String CALICO = """
            {"name": "k8s-pod-network", "cniVersion": "0.3.1",
             "plugins": [{"type": "calico", "ipam": {"type": "calico-ipam"}},
                         {"type": "portmap", "capabilities": {"portMappings": true}}]}""";

    @TempDir
    Path root;

    @Test
    void chainsAfterTheClustersPluginsIdempotentlyAndUninstallsCleanly() throws Exception {
        Path bin = root.resolve("opt/cni/bin");
        Path conf = root.resolve("etc/cni/net.d");
        Files.createDirectories(conf);
        Files.writeString(conf.resolve("10-calico.conflist"), CALICO);
        Files.writeString(conf.resolve("99-loopback.conf"), "{\"type\": \"loopback\"}");
        Path source = Path.of("target").toAbsolutePath();

        PluginInstaller installer = new PluginInstaller(source, bin, conf, Path.of("/var/run/ambient/cni-plugin.sock"),
                CniNode.Settings.of("node-a", root).deadlines().pluginTimeoutSeconds());
        installer.copyBinaries();
        assertTrue(Files.isExecutable(bin.resolve("ambient-cni")));
        assertTrue(Files.isRegularFile(bin.resolve("ambient-cni.d/ambient-cni.jar")));

        assertTrue(installer.chain());
        ObjectMapper json = new ObjectMapper();
        JsonNode chained = json.readTree(conf.resolve("10-calico.conflist").toFile());
        assertEquals(3, chained.path("plugins").size());
        assertEquals("calico", chained.at("/plugins/0/type").asText(), "the cluster's plugins come first, untouched");
        assertEquals(json.readTree(CALICO).at("/plugins/1"), chained.at("/plugins/1"));
        assertEquals("ambient-cni", chained.at("/plugins/2/type").asText());
        assertEquals(45, chained.at("/plugins/2/agent_timeout_seconds").asInt(),
                "the plugin waits longer than the agent's answer takes (40 s with the defaults)");
        assertEquals("/var/run/ambient/cni-plugin.sock", chained.at("/plugins/2/agent_socket").asText());
        assertFalse(installer.chain(), "installing again changes nothing");
        assertEquals(chained, json.readTree(conf.resolve("10-calico.conflist").toFile()));

        installer.uninstall();
        assertEquals(json.readTree(CALICO), json.readTree(conf.resolve("10-calico.conflist").toFile()));
        assertFalse(Files.exists(bin.resolve("ambient-cni")));
        assertFalse(Files.exists(bin.resolve("ambient-cni.d")));
        try (var s = Files.list(conf)) {
            assertEquals(2, s.count(), "no temporary files left behind");
        }
    }
}
