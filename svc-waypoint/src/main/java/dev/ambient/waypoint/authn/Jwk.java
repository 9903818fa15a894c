package dev.ambient.waypoint.authn;

import java.security.PublicKey;

/**
 * One public key of a JSON Web Key Set.
 *
 * @param kid its key id, or null
 * @param alg the algorithm it is declared for, or null for any that fits its type
 * @param curve "P-256", "P-384" or "Ed25519" for EC and OKP keys, else null
 */
record Jwk(String kid, String alg, String curve, PublicKey key) {
}
