package dev.ambient.waypoint.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.proto.workload.OriginatedTls;
import io.netty.channel.DefaultEventLoop;
import io.netty.handler.ssl.SslContext;
import io.netty.util.concurrent.Future;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Contexts for originated TLS are built and checked on the worker, never on the loop: the first
 * dial for a rule waits (the loop runs other work meanwhile), later ones get the context at once,
 * the files are checked again at most once per interval, and a changed file gives a new context.
 * The worker here is held at a gate, so a loop that waited for it would be seen waiting.
 */
class TlsOriginationTest {

    @TempDir
    Path dir;
    final DefaultEventLoop loop = new DefaultEventLoop();
    final Semaphore gate = new Semaphore(0);
    final AtomicInteger checks = new AtomicInteger();
    final Executor worker = r -> {
        checks.incrementAndGet();
        Thread.ofVirtual().start(() -> {
            gate.acquireUninterruptibly();
            r.run();
        });
    };

    @AfterEach
    void stop() {
        loop.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    }

    Path ca(String name) throws Exception {
        Path cert = dir.resolve(name + ".pem");
        Process p = new ProcessBuilder("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", dir.resolve(name + ".key").toString(), "-out",
                cert.toString(), "-days", "1", "-subj", "/CN=" + name).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        assertEquals(0, p.waitFor());
        return cert;
    }

    Future<SslContext> onLoop(TlsOrigination tls, OriginatedTls rule) throws Exception {
        return loop.submit(() -> tls.context(rule, true, loop)).get(2, TimeUnit.SECONDS);
    }

    @Test
    void theFirstDialWaitsWithoutBlockingTheLoopAndLaterOnesGetTheContextAtOnce() throws Exception {
        Path ca = ca("ca-one");
        TlsOrigination tls = new TlsOrigination(Duration.ofMillis(1000), worker);
        OriginatedTls rule = OriginatedTls.newBuilder().setCaCertificates(ca.toString()).build();

        Future<SslContext> first = onLoop(tls, rule);
        assertFalse(first.isDone(), "built on the worker, which is held");
        assertEquals("free", loop.submit(() -> "free").get(1, TimeUnit.SECONDS), "the loop runs other work");
        gate.release();
        SslContext built = first.get(5, TimeUnit.SECONDS);

        Future<SslContext> again = onLoop(tls, rule);
        assertTrue(again.isDone(), "within the interval: at once");
        assertSame(built, again.getNow());
        assertEquals(1, checks.get(), "no file checked again within the interval");

        // After the interval, unchanged files: checked once in the background, the same context kept.
        Thread.sleep(1200);
        assertSame(built, onLoop(tls, rule).getNow(), "a due check does not hold the dial");
        assertSame(built, onLoop(tls, rule).getNow());
        assertEquals(2, checks.get(), "one check at a time");
        gate.release();
        Thread.sleep(100);
        assertSame(built, onLoop(tls, rule).getNow());

        // A changed CA file: the next check builds a new context.
        Files.copy(ca("ca-two"), ca, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Files.setLastModifiedTime(ca, FileTime.fromMillis(System.currentTimeMillis() + 2000));
        Thread.sleep(1200);
        gate.release(10);
        SslContext now = built;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (now == built && System.nanoTime() < deadline) {
            Thread.sleep(20);
            now = onLoop(tls, rule).getNow();
        }
        assertNotSame(built, now, "rebuilt from the changed file");
    }

    @Test
    void aFileThatIsNoRegularFileFailsTheDialWithTheReason() throws Exception {
        Path fifo = dir.resolve("fifo.pem");
        new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor();
        TlsOrigination tls = new TlsOrigination(Duration.ofSeconds(5), worker);
        gate.release(10);
        Future<SslContext> f = onLoop(tls, OriginatedTls.newBuilder().setCaCertificates(fifo.toString()).build());
        f.await(5, TimeUnit.SECONDS);
        assertFalse(f.isSuccess());
        assertEquals("cannot use " + fifo + ": not a regular file of at most 1048576 bytes", f.cause().getMessage());
    }

    @Test
    void aContextNoDialUsedForTwelveIntervalsIsDropped() throws Exception {
        // DestinationRules come and go; the contexts of rules no longer dialled must not pile up.
        TlsOrigination tls = new TlsOrigination(Duration.ofMillis(50), worker);
        gate.release(100);
        OriginatedTls gone = OriginatedTls.newBuilder().setCaCertificates(ca("gone").toString()).build();
        OriginatedTls kept = OriginatedTls.newBuilder().setCaCertificates(ca("kept").toString()).build();
        onLoop(tls, gone).get(5, TimeUnit.SECONDS);
        onLoop(tls, kept).get(5, TimeUnit.SECONDS);
        assertEquals(2, tls.contexts());

        long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(900);
        while (System.nanoTime() < until) {
            onLoop(tls, kept).get(5, TimeUnit.SECONDS); // in use: checked each interval, kept
            Thread.sleep(20);
        }
        assertEquals(1, tls.contexts(), "the unused rule's context dropped, the used one kept");
        assertTrue(onLoop(tls, kept).isDone(), "the used rule still gets its context at once");
        onLoop(tls, gone).get(5, TimeUnit.SECONDS);
        assertEquals(2, tls.contexts(), "dialled again: built again");
    }
}
