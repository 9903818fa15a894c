package dev.ambient.hbone;

import java.time.Duration;

/**
 * What one peer connection may cost an HBONE server. Every peer holds a valid mesh certificate and
 * may still be hostile, so each way of making the server hold a socket or do work without end has
 * a bound here; {@link HboneRequestHandler#limitReached} reports each time one is hit.
 *
 * @param handshakeTimeout from accept to the client's HTTP/2 SETTINGS (TLS handshake, ALPN and the
 *        connection preface); a connection still not there is closed
 * @param idleTimeout a connection with no open stream for this long is told to go away
 *        (GOAWAY NO_ERROR) and closed; longer than the clients' pool idle time, so clients
 *        normally close first
 * @param maxStreamsInSetup CONNECTs of one connection between their HEADERS and our answer (the
 *        authorization and the dial); one the client resets keeps its place until its work ends,
 *        so resets cannot pile up work (rapid reset). HEADERS beyond it are refused with
 *        RST_STREAM(REFUSED_STREAM), which a client may retry, rather than queued
 * @param streamSetupTimeout a CONNECT its handler has not answered by then is answered 503
 * @param rapidResetBudget CONNECTs a client may waste per {@code rapidResetWindow}: reset by it
 *        before we answered them (their authorization and dial were spent for nothing), or sent
 *        while its streams in setup were at the bound (refused); one more and the connection gets
 *        GOAWAY(ENHANCE_YOUR_CALM) and is closed. Streams reset after our answer are ordinary ends
 *        of tunnels and never count, however many there are
 * @param rapidResetWindow the window of {@code rapidResetBudget}
 * @param maxHeaderListSize SETTINGS_MAX_HEADER_LIST_SIZE: the largest CONNECT header block we
 *        decode, advertised to the client; a larger one is refused
 */
public record HboneLimits(Duration handshakeTimeout, Duration idleTimeout, int maxStreamsInSetup,
        Duration streamSetupTimeout, int rapidResetBudget, Duration rapidResetWindow, int maxHeaderListSize) {

    public static final HboneLimits DEFAULTS = new HboneLimits(Duration.ofSeconds(10), Duration.ofMinutes(5), 100,
            Duration.ofSeconds(30), 200, Duration.ofSeconds(10), 8192);

    public HboneLimits {
        for (Duration d : new Duration[] {handshakeTimeout, idleTimeout, streamSetupTimeout, rapidResetWindow}) {
            if (d == null || d.isNegative() || d.isZero()) {
                throw new IllegalArgumentException("HBONE limits: timeouts and windows must be positive");
            }
        }
        if (maxStreamsInSetup < 1 || rapidResetBudget < 1) {
            throw new IllegalArgumentException("HBONE limits: stream bounds must be positive");
        }
        if (maxHeaderListSize < 1024) {
            throw new IllegalArgumentException("HBONE limits: max header list size must be at least 1024 bytes");
        }
    }

    /** A duration as the configuration writes it ("10s", "5m", "1500ms"), for log lines. */
    static String format(Duration d) {
        if (d.toMillis() % 1000 != 0) {
            return d.toMillis() + "ms";
        }
        long s = d.toSeconds();
        return s % 60 == 0 && s > 0 ? s / 60 + "m" : s + "s";
    }
}
