package dev.ambient.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class RequestAuthKeyTest {

    @Test
    void claimsNestUpToTenLevelsAndNothingElseIsAClaim() {
        assertEquals(List.of("groups"), RequestAuthKey.claimPath("request.auth.claims[groups]"));
        assertEquals(List.of("realm", "roles"), RequestAuthKey.claimPath("request.auth.claims[realm][roles]"));
        assertEquals(10, RequestAuthKey.claimPath("request.auth.claims" + "[a]".repeat(10)).size());
        assertNull(RequestAuthKey.claimPath("request.auth.claims" + "[a]".repeat(11)), "too deep");
        for (String bad : List.of("request.auth.claims", "request.auth.claims[]", "request.auth.claims[a",
                "request.auth.claims[a]b", "request.auth.claims[a[b]]", "request.auth.claimsx[a]")) {
            assertNull(RequestAuthKey.claimPath(bad), bad);
            assertFalse(RequestAuthKey.valid(bad), bad);
        }
        assertTrue(RequestAuthKey.valid("request.auth.principal"));
        assertTrue(RequestAuthKey.valid("request.auth.claims[iss]"));
        assertFalse(RequestAuthKey.valid("request.auth.subject"));
    }
}
