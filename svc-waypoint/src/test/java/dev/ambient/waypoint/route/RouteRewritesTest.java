package dev.ambient.waypoint.route;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ambient.proto.l7.PathRewrite;
import dev.ambient.proto.l7.PrefixRewrite;
import dev.ambient.proto.l7.Redirect;
import dev.ambient.proto.l7.UrlRewrite;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The Gateway API's path modifier table, and redirect Locations as its conformance cases expect them. */
class RouteRewritesTest {

    static PathRewrite prefix(String matched, String replacement) {
        return PathRewrite.newBuilder().setPrefix(PrefixRewrite.newBuilder().setMatchedPrefix(matched)
                .setReplacement(replacement)).build();
    }

    @ParameterizedTest(name = "{0} under {1} -> {2}: {3}")
    @CsvSource(delimiter = '|', nullValues = "null", value = {
            // The HTTPPathModifier table of the Gateway API.
            "/foo/bar | /foo  | /xyz  | /xyz/bar",
            "/foo/bar | /foo  | /xyz/ | /xyz/bar",
            "/foo/bar | /foo/ | /xyz  | /xyz/bar",
            "/foo/bar | /foo/ | /xyz/ | /xyz/bar",
            "/foo     | /foo  | /xyz  | /xyz",
            "/foo/    | /foo  | /xyz  | /xyz/",
            "/foo/bar | /foo  | ''    | /bar",
            "/foo/    | /foo  | ''    | /",
            "/foo     | /foo  | ''    | /",
            "/foo/    | /foo  | /     | /",
            "/foo     | /foo  | /     | /",
            // Conformance (httproute-rewrite-path): /prefix/one -> /one, /strip-prefix -> /.
            "/prefix/one/two      | /prefix/one  | /one | /one/two",
            "/strip-prefix/three  | /strip-prefix | /    | /three",
            "/strip-prefix        | /strip-prefix | /    | /",
            // A match on "/" puts the replacement in front.
            "/bar     | /     | /xyz  | /xyz/bar",
    })
    void prefixReplacement(String path, String matched, String replacement, String expected) {
        assertEquals(expected, RouteRewrites.path(prefix(matched, replacement), path));
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            // name | scheme | hostname | port | full path | target | Host | service port | Location
            "hostname only          | ''    | example.org | 0    | ''     | /hostname-redirect | my.svc      | 80   | http://example.org/hostname-redirect",
            "port 8083              | ''    | ''          | 8083 | ''     | /port              | my.svc:80   | 80   | http://my.svc:8083/port",
            "https without a port   | https | example.org | 0    | ''     | /s                 | my.svc      | 80   | https://example.org/s",
            "https with 443         | https | ''          | 443  | ''     | /s                 | my.svc      | 80   | https://my.svc/s",
            "http with 443          | http  | ''          | 443  | ''     | /s                 | my.svc      | 80   | http://my.svc:443/s",
            "service port kept      | ''    | ''          | 0    | /new   | /old?x=1&y=2       | my.svc:9080 | 9080 | http://my.svc:9080/new?x=1&y=2",
            "scheme http drops it   | http  | ''          | 0    | ''     | /a                 | my.svc:9080 | 9080 | http://my.svc/a",
            "ipv6 host              | ''    | ''          | 0    | ''     | /a                 | [fd00::1]:80 | 80  | http://[fd00::1]/a",
            "a Host with userinfo is not echoed | '' | '' | 0    | ''     | /a                 | evil@x      | 80   | http://reviews.shop.svc.cluster.local/a",
    })
    void redirectLocation(String name, String scheme, String hostname, int port, String fullPath, String target,
            String host, int servicePort, String expected) {
        Redirect.Builder r = Redirect.newBuilder().setScheme(scheme).setHostname(hostname).setPort(port)
                .setStatusCode(302);
        if (!fullPath.isEmpty()) {
            r.setPath(PathRewrite.newBuilder().setFullPath(fullPath));
        }
        assertEquals(expected, RouteRewrites.location(r.build(), target, host, "reviews.shop.svc.cluster.local",
                servicePort), name);
    }

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(delimiter = '|', value = {
            "/public/admin?x=1 | /admin?x=1",
            "/public           | /",
    })
    void rewriteKeepsTheQuery(String target, String expected) {
        UrlRewrite rw = UrlRewrite.newBuilder().setPath(prefix("/public", "/")).build();
        assertEquals(expected, RouteRewrites.rewrittenTarget(rw, target));
    }
}
