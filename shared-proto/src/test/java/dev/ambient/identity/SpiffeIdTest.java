package dev.ambient.identity;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class SpiffeIdTest {

    @Test
    void parsesAndFormats() {
        SpiffeId id = SpiffeId.parse("spiffe://cluster.local/ns/default/sa/bookinfo-productpage");
        assertEquals("cluster.local", id.trustDomain());
        assertEquals("default", id.namespace());
        assertEquals("bookinfo-productpage", id.serviceAccount());
        assertEquals("spiffe://cluster.local/ns/default/sa/bookinfo-productpage", id.uri());
        assertEquals("cluster.local/ns/default/sa/bookinfo-productpage", id.principal());
        assertEquals(id.uri(), id.toString());
        assertEquals(new SpiffeId("cluster.local", "default", "bookinfo-productpage"), id);
        assertEquals(id, SpiffeId.parse(id.uri()));
        assertNotEquals(SpiffeId.parse("spiffe://cluster.local/ns/default/sa/other"), id);
    }

    @Test
    void acceptsAllAllowedCharacters() {
        SpiffeId id = SpiffeId.parse("spiffe://my-td_1.example/ns/Team.A-b_c/sa/x.y-z_9");
        assertEquals("my-td_1.example", id.trustDomain());
        assertEquals("Team.A-b_c", id.namespace());
        assertEquals("x.y-z_9", id.serviceAccount());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', textBlock = """
            ''                                          | must start with "spiffe://"
            http://cluster.local/ns/a/sa/b              | must start with "spiffe://"
            SPIFFE://cluster.local/ns/a/sa/b            | must start with "spiffe://"
            ' spiffe://cluster.local/ns/a/sa/b'         | must start with "spiffe://"
            spiffe:/cluster.local/ns/a/sa/b             | must start with "spiffe://"
            spiffe://cluster.local                      | has no path
            spiffe://cluster.local/                     | path must be exactly
            spiffe://cluster.local/ns/a                 | path must be exactly
            spiffe://cluster.local/ns/a/sa              | path must be exactly
            spiffe://cluster.local/ns/a/sa/b/c          | path must be exactly
            spiffe://cluster.local/ns/a/sa/b/           | path must be exactly
            spiffe://cluster.local//ns/a/sa/b           | path must be exactly
            spiffe://cluster.local/sa/b/ns/a            | path must be exactly
            spiffe://cluster.local/namespace/a/sa/b     | path must be exactly
            spiffe:///ns/a/sa/b                         | trust domain is empty
            spiffe://Cluster.Local/ns/a/sa/b            | trust domain "Cluster.Local"
            spiffe://cluster.local:443/ns/a/sa/b        | trust domain "cluster.local:443"
            spiffe://user@cluster.local/ns/a/sa/b       | trust domain "user@cluster.local"
            spiffe://cluster.local/ns//sa/b             | namespace is empty
            spiffe://cluster.local/ns/a/sa/             | service account is empty
            spiffe://cluster.local/ns/../sa/b           | namespace ".."
            spiffe://cluster.local/ns/./sa/b            | namespace "."
            spiffe://cluster.local/ns/a%2Fb/sa/c        | namespace "a%2Fb"
            spiffe://cluster.local/ns/a/sa/b?x=1        | service account "b?x=1"
            spiffe://cluster.local/ns/a/sa/b#frag       | service account "b#frag"
            spiffe://cluster.local/ns/a b/sa/c          | namespace "a b"
            """)
    void rejectsAnythingElse(String uri, String reason) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SpiffeId.parse(uri));
        assertTrue(e.getMessage().startsWith("invalid SPIFFE id \"" + uri + "\""), e.getMessage());
        assertTrue(e.getMessage().contains(reason), () -> "expected '" + reason + "' in: " + e.getMessage());
    }

    @Test
    void rejectsNull() {
        assertThrows(IllegalArgumentException.class, () -> SpiffeId.parse(null));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "a/b", "..", "with space"})
    void constructorValidatesNamesToo(String bad) {
        assertThrows(IllegalArgumentException.class, () -> new SpiffeId("cluster.local", bad, "sa"));
        assertThrows(IllegalArgumentException.class, () -> new SpiffeId("cluster.local", "ns", bad));
        assertThrows(IllegalArgumentException.class, () -> new SpiffeId("cluster.local", null, "sa"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "a/b", "Upper.case", "with space", "td:80"})
    void constructorValidatesTrustDomainToo(String bad) {
        assertThrows(IllegalArgumentException.class, () -> new SpiffeId(bad, "ns", "sa"));
        assertThrows(IllegalArgumentException.class, () -> new SpiffeId(null, "ns", "sa"));
    }
}
