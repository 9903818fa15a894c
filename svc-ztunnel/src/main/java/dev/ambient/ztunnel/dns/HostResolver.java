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
 * The ztunnel's own lookups: an address of a destination known by name (a ServiceEntry with
 * resolution DNS), asked of the upstream resolvers from the ztunnel's own namespace, never blocking
 * an event loop, and kept in the shared cache for the answer's TTL (per question type).
 *
 * <p>IPv4 first, as before: type A, and only when the name exists but has no A record (NOERROR, no
 * address) type AAAA, so an IPv6-only host is reachable while a host with both keeps giving its
 * IPv4 address (one question, as before, and a connection from a node or pod without IPv6 never
 * gets an address it cannot reach). The route carries only the name, not the family the client
 * dialled, so the order is fixed here.
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
        return ask(host, name, DnsMessage.TYPE_A).thenCompose(a -> {
            if (!a.addresses(DnsMessage.TYPE_A).isEmpty() || a.rcode() != DnsMessage.NOERROR) {
                return pick(name, a, DnsMessage.TYPE_A);
            }
            return ask(host, name, DnsMessage.TYPE_AAAA).thenCompose(aaaa ->
                    aaaa.addresses(DnsMessage.TYPE_AAAA).isEmpty() ? pick(name, a, DnsMessage.TYPE_A)
                            : pick(name, aaaa, DnsMessage.TYPE_AAAA));
        });
    }

    /** The answer to one question, from the cache or the upstream (over TCP when UDP's was truncated). */
    private CompletableFuture<DnsMessage> ask(String host, String name, int type) {
        DnsCache.Key key = new DnsCache.Key(upstream.describe(), name, type, DnsMessage.CLASS_IN);
        DnsMessage cached = cache.peek(key);
        if (cached != null) {
            return CompletableFuture.completedFuture(cached);
        }
        DnsMessage query;
        try {
            query = DnsMessage.parse(DnsMessage.query(random.nextInt(1 << 16), name, type));
        } catch (DnsMessage.Malformed | IllegalArgumentException e) {
            return CompletableFuture.failedFuture(new UnknownHostException(host + ": " + e.getMessage()));
        }
        return upstream.exchange(query, false, SocketNamespace.HOST)
                .thenCompose(a -> a.truncated() ? upstream.exchange(query, true, SocketNamespace.HOST)
                        : CompletableFuture.completedFuture(a))
                .thenApply(answer -> {
                    cache.put(key, answer);
                    return answer;
                });
    }

    private static CompletableFuture<InetAddress> pick(String host, DnsMessage answer, int type) {
        List<byte[]> addresses = answer.addresses(type);
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
