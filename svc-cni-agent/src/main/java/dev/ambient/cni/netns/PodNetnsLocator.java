package dev.ambient.cni.netns;

import dev.ambient.net.NetworkNamespace;
import java.io.IOException;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jboss.logging.Logger;

/**
 * Finds the network namespace of a pod that is already running (its namespace was labelled
 * later, or the agent restarted) from its IP: every namespace on the node, named
 * ({@code /var/run/netns/*}) or held by a process ({@code /proc/PID/ns/net}), is visited once
 * (deduplicated by inode, the node's own skipped) and its addresses read from inside.
 * Blocking and it moves the calling thread between namespaces: platform worker threads only.
 */
public final class PodNetnsLocator {

    private static final Logger LOG = Logger.getLogger(PodNetnsLocator.class);

    private final List<Path> netnsDirs;
    private final Path procDir;

    public PodNetnsLocator(List<Path> netnsDirs, Path procDir) {
        this.netnsDirs = netnsDirs;
        this.procDir = procDir;
    }

    /** For each wanted IP that was found, a path to its namespace (to be opened at once). */
    public Map<String, Path> locate(Set<String> ips) throws IOException {
        Map<String, Path> found = new HashMap<>();
        if (ips.isEmpty()) {
            return found;
        }
        if (Thread.currentThread().isVirtual()) {
            throw new IllegalStateException("setns needs a platform thread");
        }
        long home = NetworkNamespace.currentInode();
        Set<Long> visited = new HashSet<>();
        visited.add(home);
        for (Path candidate : candidates()) {
            long inode;
            try {
                inode = (Long) Files.getAttribute(candidate, "unix:ino");
            } catch (IOException | RuntimeException e) {
                continue; // the process exited, or it is not a namespace file
            }
            if (!visited.add(inode)) {
                continue;
            }
            Set<String> addresses;
            try (NetworkNamespace ns = NetworkNamespace.open(candidate)) {
                addresses = ns.call(PodNetnsLocator::addresses);
            } catch (Exception e) {
                LOG.debugf("cannot look into %s: %s", candidate, e.getMessage());
                continue;
            }
            for (String ip : ips) {
                if (addresses.contains(ip)) {
                    found.put(ip, candidate);
                }
            }
            if (found.size() == ips.size()) {
                break;
            }
        }
        return found;
    }

    private List<Path> candidates() {
        List<Path> out = new ArrayList<>();
        for (Path dir : netnsDirs) {
            if (!Files.isDirectory(dir)) {
                continue;
            }
            try (DirectoryStream<Path> s = Files.newDirectoryStream(dir)) {
                s.forEach(out::add);
            } catch (IOException e) {
                LOG.debugf("cannot list %s: %s", dir, e.getMessage());
            }
        }
        try (DirectoryStream<Path> s = Files.newDirectoryStream(procDir, p -> p.getFileName().toString()
                .chars().allMatch(Character::isDigit))) {
            s.forEach(p -> out.add(p.resolve("ns/net")));
        } catch (IOException e) {
            LOG.debugf("cannot list %s: %s", procDir, e.getMessage());
        }
        return out;
    }

    /** The addresses of the namespace the calling thread is in; the netlink query runs here. */
    static Set<String> addresses() throws IOException {
        Set<String> out = new HashSet<>();
        for (NetworkInterface nif : Collections.list(NetworkInterface.getNetworkInterfaces())) {
            for (InetAddress a : Collections.list(nif.getInetAddresses())) {
                String s = a.getHostAddress();
                int zone = s.indexOf('%');
                out.add(zone < 0 ? s : s.substring(0, zone));
            }
        }
        return out;
    }
}
