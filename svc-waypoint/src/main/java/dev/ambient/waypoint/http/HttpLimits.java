package dev.ambient.waypoint.http;

import java.time.Duration;

/**
 * The bounds of the HTTP the waypoint serves, from waypoint.http.*: one body, all bodies held at
 * once, the server-side timeouts, how paths are normalized, and how long an undeclared port is
 * sniffed.
 */
public record HttpLimits(int maxBodyBytes, BodyBudget bodyBudget, HttpDeadlines.Limits deadlines,
        RequestTarget.Options paths, Duration sniffTimeout) {
}
