package dev.ambient.waypoint.proxy;

import dev.ambient.proto.workload.OriginatedTls;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.EventLoop;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.KeyStore;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * TLS the waypoint originates to an endpoint outside the mesh (DestinationRule {@code tls.mode:
 * SIMPLE} or {@code MUTUAL}): TLS 1.3 or 1.2, the server name sent as SNI, and the server's
 * certificate verified against the trusted CAs (the rule's {@code caCertificates} file, else the
 * JDK's trust store) and against that name, as a browser would, or against the rule's
 * {@code subjectAltNames} when it lists some. MUTUAL presents the rule's client certificate. For
 * HTTP it offers h2 and http/1.1 by ALPN. Only a rule that says {@code insecureSkipVerify: true}
 * turns verification off. A failed verification fails the handshake: the request is answered 503,
 * never sent in clear or to an unverified server.
 *
 * <p>Contexts are built from the rule's files on a worker (virtual) thread, never on an event loop:
 * a loop gets a ready context at once, or, for a rule not seen before, a future it waits on without
 * blocking. A context in use is checked against its files again at most every {@code recheck}
 * (also off the loop; dials meanwhile use the one they have), and rebuilt when one changed.
 */
public final class TlsOrigination {

    private static final String[] PROTOCOLS = {"TLSv1.3", "TLSv1.2"};
    private static final long MAX_FILE_BYTES = 1 << 20;
    private static final ApplicationProtocolConfig ALPN_HTTP = new ApplicationProtocolConfig(
            ApplicationProtocolConfig.Protocol.ALPN, ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE,
            ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT, ApplicationProtocolNames.HTTP_2,
            ApplicationProtocolNames.HTTP_1_1);

    /** What a context is made of: one per trust source, client certificate, names and ALPN. */
    private record ContextSpec(String caFile, boolean insecure, String clientCertificate, String privateKey,
            List<String> subjectAltNames, boolean alpnHttp) {

        static ContextSpec of(OriginatedTls tls, boolean alpnHttp) {
            return new ContextSpec(tls.getCaCertificates(), tls.getInsecureSkipVerify(), tls.getClientCertificate(),
                    tls.getPrivateKey(), List.copyOf(tls.getSubjectAltNamesList()), alpnHttp);
        }

        List<Path> files() {
            List<Path> files = new ArrayList<>();
            for (String f : new String[] {insecure ? "" : caFile, clientCertificate, privateKey}) {
                if (!f.isEmpty()) {
                    files.add(Path.of(f));
                }
            }
            return files;
        }
    }

    /** A file as it was when a context was made of it. */
    private record FileStamp(Path path, long modifiedMillis, long size) {
    }

    /** A built context (or why none could be built), the files it was made of, and when they were last checked. */
    private record Built(SslContext context, String error, List<FileStamp> stamps, long checkedAtNanos) {
        /** Checked as of now, when the work is done (a first build may take a while). */
        static Built now(SslContext context, String error, List<FileStamp> stamps) {
            return new Built(context, error, stamps, System.nanoTime());
        }
    }

    /** A context no dial asked for during this many check intervals is dropped (its rule is likely gone). */
    static final int IDLE_INTERVALS = 12;

    private final long recheckNanos;
    private final Executor blocking;
    private final Map<ContextSpec, Built> built = new ConcurrentHashMap<>();
    private final Map<ContextSpec, CompletableFuture<Built>> building = new ConcurrentHashMap<>();

    /** @param blocking where files are read and contexts built (never an event loop) */
    public TlsOrigination(Duration recheck, Executor blocking) {
        this.recheckNanos = recheck.toNanos();
        this.blocking = blocking;
    }

    /** The server name to send and verify: the rule's SNI, else the name the endpoint was known by. */
    public static String serverName(OriginatedTls tls, String fallback) {
        return tls.getSni().isEmpty() ? fallback : tls.getSni();
    }

    /**
     * The client context for a rule, completed on {@code loop}: at once when one is built (its files
     * checked again in the background when due), else once a worker has built it. Fails with the
     * reason when the rule's files cannot be used (the attempt fails, nothing is sent).
     *
     * @param alpnHttp offer h2 and http/1.1 (an HTTP request); else no ALPN (a TCP stream)
     */
    public Future<SslContext> context(OriginatedTls tls, boolean alpnHttp, EventLoop loop) {
        ContextSpec spec = ContextSpec.of(tls, alpnHttp);
        Built current = built.get(spec);
        if (current != null) {
            if (System.nanoTime() - current.checkedAtNanos() > recheckNanos) {
                refresh(spec); // dials until it is done use what there is
            }
            return completed(current, loop.newPromise());
        }
        Promise<SslContext> result = loop.newPromise();
        refresh(spec).whenComplete((b, t) -> loop.execute(() -> completed(b, result)));
        return result;
    }

    private static Promise<SslContext> completed(Built b, Promise<SslContext> promise) {
        return b.context() != null ? promise.setSuccess(b.context()) : promise.setFailure(new IOException(b.error()));
    }

    /** Checks (and if need be builds) the spec's context on a worker; one check per spec at a time. */
    private CompletableFuture<Built> refresh(ContextSpec spec) {
        CompletableFuture<Built> mine = new CompletableFuture<>();
        CompletableFuture<Built> running = building.putIfAbsent(spec, mine);
        if (running != null) {
            return running;
        }
        // Not computeIfAbsent with a whenComplete that removes: a check finishing before the
        // callback is attached would remove inside the map's own computation, and the finished
        // check would stay registered forever, so the files were never checked again.
        try {
            blocking.execute(() -> {
                Built b;
                try {
                    b = load(spec, built.get(spec));
                    built.put(spec, b); // before anyone waiting hears of it
                    dropIdle(b.checkedAtNanos());
                } catch (RuntimeException | Error e) {
                    building.remove(spec, mine);
                    mine.completeExceptionally(e);
                    throw e;
                }
                building.remove(spec, mine);
                mine.complete(b);
            });
        } catch (RuntimeException rejected) {
            building.remove(spec, mine);
            mine.completeExceptionally(rejected);
        }
        return mine;
    }

    /**
     * Contexts in use are checked once per interval, so one not checked for {@link #IDLE_INTERVALS}
     * intervals has had no dial: its DestinationRule was changed or removed. Without this, every
     * rule ever seen would keep its context (and key material) for the process's life.
     */
    private void dropIdle(long now) {
        long idle = recheckNanos * IDLE_INTERVALS;
        built.entrySet().removeIf(e -> now - e.getValue().checkedAtNanos() > idle);
    }

    /** How many contexts are held (for tests and the config dump). */
    int contexts() {
        return built.size();
    }

    /** Blocking: stats the files, and builds a new context only when one of them changed. */
    private static Built load(ContextSpec spec, Built previous) {
        List<FileStamp> stamps = new ArrayList<>();
        try {
            for (Path p : spec.files()) {
                BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class);
                // A FIFO or a device (/dev/zero) would hold a worker forever; a huge file, memory.
                if (!a.isRegularFile() || a.size() > MAX_FILE_BYTES) {
                    return Built.now(null, "cannot use " + p + ": not a regular file of at most " + MAX_FILE_BYTES
                            + " bytes", List.of());
                }
                stamps.add(new FileStamp(p, a.lastModifiedTime().toMillis(), a.size()));
            }
            if (previous != null && previous.context() != null && previous.stamps().equals(stamps)) {
                return Built.now(previous.context(), null, stamps);
            }
            return Built.now(build(spec), null, stamps);
        } catch (IOException | java.security.GeneralSecurityException | RuntimeException e) {
            return Built.now(null, "cannot use " + describe(spec) + ": " + e.getMessage(), stamps);
        }
    }

    private static SslContext build(ContextSpec spec) throws IOException, java.security.GeneralSecurityException {
        SslContextBuilder b = SslContextBuilder.forClient().sslProvider(SslProvider.JDK).protocols(PROTOCOLS);
        if (spec.insecure()) {
            b.trustManager(InsecureTrustManagerFactory.INSTANCE);
        } else {
            X509ExtendedTrustManager trusted = trustManager(spec.caFile());
            b.trustManager(spec.subjectAltNames().isEmpty() ? trusted
                    : new SubjectAltNameTrustManager(trusted, spec.subjectAltNames()));
        }
        if (!spec.clientCertificate().isEmpty()) {
            b.keyManager(Path.of(spec.clientCertificate()).toFile(), Path.of(spec.privateKey()).toFile());
        }
        if (spec.alpnHttp()) {
            b.applicationProtocolConfig(ALPN_HTTP);
        }
        return b.build();
    }

    /** The CAs of the PEM file, else the JDK's trust store. */
    private static X509ExtendedTrustManager trustManager(String caFile)
            throws IOException, java.security.GeneralSecurityException {
        KeyStore store = null;
        if (!caFile.isEmpty()) {
            store = KeyStore.getInstance(KeyStore.getDefaultType());
            store.load(null, null);
            try (InputStream in = Files.newInputStream(Path.of(caFile))) {
                int i = 0;
                for (var c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                    store.setCertificateEntry("ca-" + i++, c);
                }
                if (i == 0) {
                    throw new CertificateException("no certificate in " + caFile);
                }
            }
        }
        TrustManagerFactory f = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        f.init(store);
        for (TrustManager t : f.getTrustManagers()) {
            if (t instanceof X509ExtendedTrustManager x) {
                return x;
            }
        }
        throw new IllegalStateException("no X.509 trust manager");
    }

    private static String describe(ContextSpec spec) {
        List<String> parts = new ArrayList<>();
        if (!spec.caFile().isEmpty() && !spec.insecure()) {
            parts.add("caCertificates " + spec.caFile());
        }
        if (!spec.clientCertificate().isEmpty()) {
            parts.add("clientCertificate " + spec.clientCertificate() + ", privateKey " + spec.privateKey());
        }
        return parts.isEmpty() ? "the JDK's trust store" : String.join(", ", parts);
    }

    /**
     * A client handler for one connection with a context from {@link #context}: the server name as
     * SNI, and verified in the certificate unless the rule names subjectAltNames (then those are) or
     * says insecureSkipVerify.
     */
    public static SslHandler handler(SslContext context, OriginatedTls tls, String serverName, int port,
            ByteBufAllocator alloc) {
        SslHandler handler = context.newHandler(alloc, serverName, port);
        SSLEngine engine = handler.engine();
        SSLParameters params = engine.getSSLParameters();
        if (!tls.getInsecureSkipVerify() && tls.getSubjectAltNamesCount() == 0) {
            params.setEndpointIdentificationAlgorithm("HTTPS"); // the certificate must name serverName
        }
        engine.setSSLParameters(params);
        return handler;
    }

    /**
     * Verifies the chain as the JDK does, then that the server's certificate carries one of the
     * expected names: a DNS name (the certificate's may be a wildcard for the leftmost label), a URI
     * (a SPIFFE id) or an IP address, compared whole.
     */
    static final class SubjectAltNameTrustManager extends X509ExtendedTrustManager {
        private final X509ExtendedTrustManager chain;
        private final List<String> expected;

        SubjectAltNameTrustManager(X509ExtendedTrustManager chain, List<String> expected) {
            this.chain = chain;
            this.expected = expected;
        }

        @Override
        public void checkServerTrusted(X509Certificate[] certs, String authType, SSLEngine engine)
                throws CertificateException {
            chain.checkServerTrusted(certs, authType, engine);
            names(certs[0]);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] certs, String authType, Socket socket)
                throws CertificateException {
            chain.checkServerTrusted(certs, authType, socket);
            names(certs[0]);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] certs, String authType) throws CertificateException {
            chain.checkServerTrusted(certs, authType);
            names(certs[0]);
        }

        private void names(X509Certificate leaf) throws CertificateException {
            var sans = leaf.getSubjectAlternativeNames();
            List<String> presented = new ArrayList<>();
            if (sans != null) {
                for (List<?> san : sans) {
                    int type = (Integer) san.get(0);
                    String value = String.valueOf(san.get(1));
                    presented.add(value);
                    for (String want : expected) {
                        if (matches(type, value, want)) {
                            return;
                        }
                    }
                }
            }
            throw new CertificateException("the server's certificate names " + presented + ", none of the rule's"
                    + " subjectAltNames " + expected);
        }

        private static boolean matches(int type, String presented, String want) {
            return switch (type) {
                case 2 -> dnsMatches(presented.toLowerCase(Locale.ROOT), want.toLowerCase(Locale.ROOT));
                case 6 -> presented.equals(want);
                case 7 -> ipEquals(presented, want);
                default -> false;
            };
        }

        private static boolean dnsMatches(String presented, String want) {
            if (presented.startsWith("*.")) {
                int dot = want.indexOf('.');
                return dot > 0 && want.substring(dot).equals(presented.substring(1));
            }
            return presented.equals(want);
        }

        private static boolean ipEquals(String presented, String want) {
            byte[] a = io.netty.util.NetUtil.createByteArrayFromIpAddressString(presented);
            byte[] b = io.netty.util.NetUtil.createByteArrayFromIpAddressString(want);
            return a != null && java.util.Arrays.equals(a, b);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] certs, String authType, SSLEngine engine)
                throws CertificateException {
            throw new CertificateException("a client-side trust manager");
        }

        @Override
        public void checkClientTrusted(X509Certificate[] certs, String authType, Socket socket)
                throws CertificateException {
            throw new CertificateException("a client-side trust manager");
        }

        @Override
        public void checkClientTrusted(X509Certificate[] certs, String authType) throws CertificateException {
            throw new CertificateException("a client-side trust manager");
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return chain.getAcceptedIssuers();
        }
    }
}
