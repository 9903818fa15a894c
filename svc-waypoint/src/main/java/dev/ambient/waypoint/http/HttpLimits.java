package dev.ambient.waypoint.http;

import java.time.Duration;

/**
 * The bounds of the HTTP the waypoint serves, from waypoint.http.*: the copy of one request body
 * held for retries, all such copies at once, the server-side timeouts, how long a stream may go
 * without a byte either way, how paths are normalized, how long an undeclared port is sniffed, and how long a TCP tunnel may idle.
 */
public record HttpLimits(long retryBufferBytes, BodyBudget bodyBudget, HttpDeadlines.Limits deadlines,
        Duration streamIdleTimeout, RequestTarget.Options paths, Duration sniffTimeout, Duration tcpIdleTimeout) {
}
