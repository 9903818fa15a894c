package dev.ambient.auth;

import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Refuses, without asking anyone, a token that cannot pass the TokenReview: one that is not a JWT,
 * has expired, or whose (unverified) {@code aud} claim does not name one of our audiences. Such
 * tokens cost a few microseconds, so a flood of garbage or of tokens minted for other services
 * never reaches the API server. What passes is checked for real by the delegate.
 */
public final class AudiencePrecheck implements TokenAuthenticator {

    private static final Pattern JWT = Pattern.compile("[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+");

    private final List<String> audiences;
    private final TokenAuthenticator delegate;

    public AudiencePrecheck(List<String> audiences, TokenAuthenticator delegate) {
        if (audiences.isEmpty()) {
            throw new IllegalArgumentException("at least one audience is required");
        }
        this.audiences = List.copyOf(audiences);
        this.delegate = delegate;
    }

    @Override
    public Caller authenticate(String token, String peer) {
        check(token);
        return delegate.authenticate(token, peer);
    }

    void check(String token) {
        if (token.length() > BearerToken.MAX_CHARS || !JWT.matcher(token).matches()) {
            throw AuthenticationFailure.unauthenticated("the token is not a JWT: send a projected service-account token");
        }
        String payload = token.substring(token.indexOf('.') + 1, token.lastIndexOf('.'));
        JsonObject claims;
        try {
            claims = new JsonObject(new String(Base64.getUrlDecoder().decode(payload), StandardCharsets.UTF_8));
        } catch (IllegalArgumentException | DecodeException | ClassCastException e) {
            throw AuthenticationFailure.unauthenticated("the token is not a JWT: its payload is not a JSON object");
        }
        List<String> named = new ArrayList<>();
        Object aud = claims.getValue("aud");
        if (aud instanceof String one) {
            named.add(one);
        } else if (aud instanceof JsonArray many) {
            many.forEach(a -> named.add(String.valueOf(a)));
        }
        if (named.stream().noneMatch(audiences::contains)) {
            throw AuthenticationFailure.unauthenticated("the token is not for audience " + String.join(" or ", audiences)
                    + " (it is for " + (named.isEmpty() ? "no audience" : String.join(", ", named))
                    + "): mount a projected service-account token with audience " + audiences.getFirst());
        }
        if (claims.getValue("exp") instanceof Number exp && exp.longValue() < Instant.now().getEpochSecond()) {
            throw AuthenticationFailure.unauthenticated("the token expired at " + Instant.ofEpochSecond(exp.longValue()));
        }
    }
}
