package dev.ambient.ztunnel.admin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageOrBuilder;
import com.google.protobuf.util.JsonFormat;
import dev.ambient.hbone.Authority;
import dev.ambient.ztunnel.Ztunnel;
import dev.ambient.ztunnel.ZtunnelNode;
import dev.ambient.ztunnel.inpod.InpodWorkload;
import dev.ambient.ztunnel.state.Addresses;
import dev.ambient.ztunnel.state.StateSnapshot;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.ext.web.Router;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.net.InetAddress;
import org.jboss.logging.Logger;

/**
 * The admin port (15000, localhost only, as Istio's): {@code /config_dump} shows what this ztunnel
 * knows and holds: workloads, services, policies, certificates with expiry, listeners, pool.
 * Runs on Quarkus's Vert.x loops, never on the data plane's.
 */
@ApplicationScoped
public class AdminServer {

    private static final Logger LOG = Logger.getLogger(AdminServer.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Ztunnel ztunnel;
    private final Vertx vertx;
    private HttpServer server;

    public AdminServer(Ztunnel ztunnel, Vertx vertx) {
        this.ztunnel = ztunnel;
        this.vertx = vertx;
    }

    void onStart(@Observes StartupEvent event) {
        int port = ztunnel.node().config().ports().admin();
        if (port <= 0) {
            return;
        }
        Router router = Router.router(vertx);
        router.get("/config_dump").handler(ctx -> ctx.response()
                .putHeader("content-type", "application/json")
                .end(configDump().toPrettyString()));
        router.get("/").handler(ctx -> ctx.response().putHeader("content-type", "text/plain")
                .end("ztunnel admin\n/config_dump  workloads, services, policies, certificates, listeners, pool\n"));
        server = vertx.createHttpServer().requestHandler(router);
        server.listen(port, InetAddress.getLoopbackAddress().getHostAddress())
                .toCompletionStage().toCompletableFuture().join();
        LOG.infof("admin listening on 127.0.0.1:%d", server.actualPort());
    }

    void onStop(@Observes ShutdownEvent event) {
        if (server != null) {
            server.close();
        }
    }

    public int port() {
        return server == null ? -1 : server.actualPort();
    }

    ObjectNode configDump() {
        return configDump(ztunnel.node());
    }

    /** The dump of one node; public for tests that run nodes without Quarkus. */
    public static ObjectNode configDump(ZtunnelNode ztunnel) {
        StateSnapshot state = ztunnel.store().current();
        ObjectNode root = JSON.createObjectNode();
        root.put("node", ztunnel.config().nodeName());
        root.set("workloads", protos(state.workloads()));
        root.set("services", protos(state.services()));
        root.set("policies", protos(state.policies()));
        root.set("peerAuthentications", protos(state.peerAuthentications()));
        ArrayNode certificates = root.putArray("certificates");
        ztunnel.certificates().status().forEach(c -> certificates.addObject()
                .put("identity", c.identity())
                .put("state", c.state())
                .put("notBefore", String.valueOf(c.notBefore()))
                .put("notAfter", String.valueOf(c.notAfter()))
                .put("renewAt", String.valueOf(c.renewAt()))
                .put("serial", c.serial())
                .put("lastError", c.lastError()));
        ArrayNode listeners = root.putArray("listeners");
        ztunnel.inbound().listening().forEach(l -> listeners.addObject()
                .put("address", Authority.format(l.address()))
                .put("workload", l.workloadUid())
                .put("identity", l.identity().uri()));
        ztunnel.inbound().failures().forEach((l, why) -> listeners.addObject()
                .put("address", Authority.format(l.address()))
                .put("workload", l.workloadUid())
                .put("error", why));
        ArrayNode pool = root.putArray("pool");
        ztunnel.pool().connectionCounts().forEach((k, n) -> pool.addObject()
                .put("source", k.source().uri())
                .put("destination", Authority.format(k.destination()))
                .put("connections", n));
        ztunnel.inpod().ifPresent(inpod -> {
            ObjectNode section = root.putObject("inpod");
            ztunnel.zds().ifPresent(z -> section.put("zdsSocket", z.socketPath().toString())
                    .put("connected", z.connected())
                    .put("snapshotReceived", z.snapshotReceived())
                    .put("connections", z.connections())
                    .put("lastError", z.lastError()));
            ArrayNode pods = section.putArray("workloads");
            java.util.List<InpodWorkload> all = new java.util.ArrayList<>(inpod.enrolled());
            all.addAll(inpod.drainingNow());
            for (InpodWorkload p : all) {
                ObjectNode o = pods.addObject()
                        .put("uid", p.uid())
                        .put("name", p.info().getName())
                        .put("namespace", p.info().getNamespace())
                        .put("serviceAccount", p.info().getServiceAccount())
                        .put("identity", p.identity() == null ? null : p.identity().uri())
                        .put("netns", p.netns())
                        .put("state", p.state().name())
                        .put("replyRouting", p.replyRouting())
                        .put("activeConnections", p.activeConnections())
                        .put("pooledConnections", p.pooledConnections())
                        .put("added", p.added().toString());
                ArrayNode ips = o.putArray("addresses");
                p.addresses().forEach(a -> ips.add(Addresses.format(a)));
                ArrayNode ls = o.putArray("listeners");
                p.listeners().forEach(l -> ls.addObject().put("purpose", l.purpose())
                        .put("address", Authority.format(l.address())));
            }
        });
        ztunnel.localConfig().ifPresent(f -> {
            ObjectNode c = root.putObject("localConfig");
            c.put("reloads", f.reloads());
            c.put("rejectedReloads", f.rejectedReloads());
            c.put("lastError", f.lastError().orElse(null));
        });
        return root;
    }

    /** Raw address bytes print as base64 in proto JSON; show them as IPs instead. */
    private static JsonNode readableAddresses(JsonNode node) {
        if (node instanceof ObjectNode o) {
            o.properties().forEach(e -> {
                String k = e.getKey();
                JsonNode v = e.getValue();
                if ((k.equals("address") || k.equals("nodeAddress")) && v.isTextual()) {
                    o.put(k, ip(v.asText()));
                } else if (k.equals("addresses") && v.isArray() && !v.isEmpty() && v.get(0).isTextual()) {
                    ArrayNode ips = JSON.createArrayNode();
                    v.forEach(a -> ips.add(ip(a.asText())));
                    o.set(k, ips);
                } else {
                    readableAddresses(v);
                }
            });
        } else if (node instanceof ArrayNode a) {
            a.forEach(AdminServer::readableAddresses);
        }
        return node;
    }

    private static String ip(String base64) {
        try {
            return Addresses.format(InetAddress.getByAddress(java.util.Base64.getDecoder().decode(base64)));
        } catch (Exception e) {
            return base64;
        }
    }

    private static ArrayNode protos(Iterable<? extends MessageOrBuilder> messages) {
        ArrayNode out = JSON.createArrayNode();
        JsonFormat.Printer printer = JsonFormat.printer().omittingInsignificantWhitespace();
        for (MessageOrBuilder m : messages) {
            try {
                JsonNode node = JSON.readTree(printer.print(m));
                out.add(readableAddresses(node));
            } catch (InvalidProtocolBufferException | com.fasterxml.jackson.core.JsonProcessingException e) {
                out.addObject().put("error", e.getMessage());
            }
        }
        return out;
    }
}
