package dev.ambient.ztunnel.dns;

import dev.ambient.ztunnel.inpod.SocketNamespace;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.security.SecureRandom;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The ztunnel's own lookups: the IPv4 address of a destination known by name (a ServiceEntry with
 * resolution DNS), asked of the upstream resolvers from the ztunnel's own namespace, never blocking
 * an event loop, and kept in the shared cache for the answer's TTL.
 */
public final class HostResolver {

    // Query ids an off-path spoofer cannot guess. Per instance, not static: native-image would
    // otherwise bake one seeded generator into the executable (native-images checks this).
    private final SecureRandom random = new SecureRandom();

    private final DnsUpstream upstream;
    private final DnsCache cache;

    public HostResolver(DnsUpstream upstream, DnsCache cache) {
        this.upstream = upstream;
        this.cache = cache;
    }

    /** One of the host's addresses; fails with a message naming the host when there is none. */
    public CompletableFuture<InetAddress> resolve(String host) {
        String name = host.toLowerCase(Locale.ROOT);
        DnsCache.Key key = new DnsCache.Key(upstream.describe(), name, DnsMessage.TYPE_A, DnsMessage.CLASS_IN);
        DnsMessage cached = cache.peek(key);
        if (cached != null) {
            return pick(name, cached);
        }
        DnsMessage query;
        try {
            query = DnsMessage.parse(DnsMessage.query(random.nextInt(1 << 16), name, DnsMessage.TYPE_A));
        } catch (DnsMessage.Malformed | IllegalArgumentException e) {
            return CompletableFuture.failedFuture(new UnknownHostException(host + ": " + e.getMessage()));
        }
        return upstream.exchange(query, false, SocketNamespace.HOST)
                .thenCompose(a -> a.truncated() ? upstream.exchange(query, true, SocketNamespace.HOST)
                        : CompletableFuture.completedFuture(a))
                .thenCompose(answer -> {
                    cache.put(key, answer);
                    return pick(name, answer);
                });
    }

    private static CompletableFuture<InetAddress> pick(String host, DnsMessage answer) {
        List<byte[]> addresses = answer.addresses(DnsMessage.TYPE_A);
        if (addresses.isEmpty()) {
            return CompletableFuture.failedFuture(new UnknownHostException(host + ": no address (rcode "
                    + answer.rcode() + ")"));
        }
        try {
            return CompletableFuture.completedFuture(InetAddress.getByAddress(host,
                    addresses.get(ThreadLocalRandom.current().nextInt(addresses.size()))));
        } catch (UnknownHostException e) {
            return CompletableFuture.failedFuture(e);
        }
    }
}
