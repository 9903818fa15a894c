package dev.ambient.waypoint.http;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ambient.waypoint.http.RequestTarget.EscapedSlashes;
import dev.ambient.waypoint.http.RequestTarget.Normalization;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * What policy judges is what is forwarded: one string per target, for each normalization and
 * escaped-slash action. "forward X" means the application gets X (policy judges its path),
 * "reject" a 400, "redirect X" a 307.
 */
class RequestTargetTest {

    static final RequestTarget.Options DEFAULT = RequestTarget.Options.parse("MERGE_SLASHES", "REJECT_REQUEST");

    static Arguments row(Normalization n, EscapedSlashes e, String target, String expected) {
        return Arguments.of(new RequestTarget.Options(n, e), target, expected);
    }

    static Arguments row(String target, String expected) {
        return Arguments.of(DEFAULT, target, expected);
    }

    static Stream<Arguments> table() {
        return Stream.of(
                // The default: MERGE_SLASHES and REJECT_REQUEST.
                row("/public/../admin", "forward /admin"),
                row("/./admin/./x", "forward /admin/x"),
                row("/%2e%2e/admin", "forward /admin"),
                row("/../../admin", "forward /admin"),
                row("/a/b/..", "forward /a/"),
                row("http://svc.local:80/admin?x=../y", "forward /admin?x=../y"),
                row("http://svc?q=1", "forward /?q=1"),
                row("/caf%c3%a9", "forward /caf%C3%A9"),
                row("/%7Euser", "forward /~user"),
                row("/files/a%20b?q=%2F", "forward /files/a%20b?q=%2F"),
                row("//admin", "forward /admin"),
                row("/a//b///c", "forward /a/b/c"),
                row("/a\\..\\admin", "forward /admin"),
                row("/public%2F..%2Fadmin", "reject"),
                row("/public%2f..%2fadmin", "reject"),
                row("/public%5C..%5Cadmin", "reject"),
                row("/admin#frag", "reject"),
                row("/bad%zz", "reject"),
                row("/cut%2", "reject"),
                row("admin", "reject"),
                row("*", "forward *"),
                // BASE keeps repeated slashes.
                row(Normalization.BASE, EscapedSlashes.REJECT_REQUEST, "//admin", "forward //admin"),
                row(Normalization.BASE, EscapedSlashes.KEEP_UNCHANGED, "/a%2fb/../c", "forward /c"),
                // Escaped slashes kept: unchanged except for upper-cased hex, never a separator.
                row(Normalization.MERGE_SLASHES, EscapedSlashes.KEEP_UNCHANGED, "/public%2f..%2Fadmin",
                        "forward /public%2F..%2Fadmin"),
                row(Normalization.MERGE_SLASHES, EscapedSlashes.UNESCAPE_AND_FORWARD, "/public%2F..%2Fadmin",
                        "forward /admin"),
                row(Normalization.MERGE_SLASHES, EscapedSlashes.UNESCAPE_AND_FORWARD, "/a%5Cb", "forward /a/b"),
                row(Normalization.MERGE_SLASHES, EscapedSlashes.UNESCAPE_AND_REDIRECT, "/x%2Fy?q=1",
                        "redirect /x/y?q=1"),
                row(Normalization.MERGE_SLASHES, EscapedSlashes.UNESCAPE_AND_REDIRECT, "/x/y", "forward /x/y"),
                row(Normalization.DECODE_AND_MERGE_SLASHES, EscapedSlashes.REJECT_REQUEST, "/a%2F%2Fb",
                        "forward /a/b"),
                // NONE: nothing changes; what is forwarded is still exactly what is judged.
                row(Normalization.NONE, EscapedSlashes.KEEP_UNCHANGED, "/public/../%2e/a%2fb",
                        "forward /public/../%2e/a%2fb"),
                row(Normalization.NONE, EscapedSlashes.REJECT_REQUEST, "/a%2Fb", "reject"));
    }

    @ParameterizedTest(name = "{0} {1} -> {2}")
    @MethodSource("table")
    void policyAndTheApplicationSeeTheSamePath(RequestTarget.Options options, String target, String expected) {
        String got = switch (RequestTarget.normalize(target, options)) {
            case RequestTarget.Forward f -> {
                assertEquals(f.target().split("\\?", 2)[0], f.path(), "policy judges the forwarded path");
                yield "forward " + f.target();
            }
            case RequestTarget.Reject r -> "reject";
            case RequestTarget.Redirect r -> "redirect " + r.location();
        };
        assertEquals(expected, got);
    }
}
