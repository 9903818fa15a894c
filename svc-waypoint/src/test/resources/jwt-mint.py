#!/usr/bin/python3
"""Mints JWTs with Debian's python3-jwt and python3-cryptography: an implementation that is not ours.

Reads a JSON request on stdin:
  {"keys": [{"kid": "rs", "alg": "RS256"}, ...],      # key pairs to make; their public halves form "jwks"
   "tokens": {"name": {"kid": "rs", "alg": "RS256", "claims": {...},
                       "signWith": "other-kid",         # optional: sign with another made key (not published)
                       "tamper": true,                  # optional: change the payload after signing
                       "header": {...}}}}              # optional extra header fields
Claims "exp"/"nbf"/"iat" given as {"in": seconds} are relative to now.
Writes {"jwks": {"keys": [...]}, "allJwks": {...unpublished keys too}, "tokens": {"name": "<jwt>"}} on stdout.
"""
import base64
import json
import sys
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm


def make(alg):
    if alg.startswith("RS") or alg.startswith("PS"):
        k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return k, json.loads(RSAAlgorithm.to_jwk(k.public_key()))
    if alg == "ES256":
        k = ec.generate_private_key(ec.SECP256R1())
        return k, json.loads(ECAlgorithm.to_jwk(k.public_key()))
    if alg == "ES384":
        k = ec.generate_private_key(ec.SECP384R1())
        return k, json.loads(ECAlgorithm.to_jwk(k.public_key()))
    if alg == "EdDSA":
        k = ed25519.Ed25519PrivateKey.generate()
        return k, json.loads(OKPAlgorithm.to_jwk(k.public_key()))
    raise ValueError(alg)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    req = json.load(sys.stdin)
    now = int(time.time())
    private, jwks, every = {}, [], []
    for spec in req.get("keys", []):
        k, jwk = make(spec["alg"])
        private[spec["kid"]] = k
        jwk["kid"] = spec["kid"]
        jwk["alg"] = spec["alg"]
        jwk["use"] = "sig"
        every.append(jwk)
        if spec.get("publish", True):
            jwks.append(jwk)
    tokens = {}
    for name, t in req.get("tokens", {}).items():
        claims = {}
        for c, v in t.get("claims", {}).items():
            claims[c] = now + v["in"] if isinstance(v, dict) and "in" in v else v
        header = dict(t.get("header", {}))
        if "kid" in t:
            header["kid"] = t["kid"]
        alg = t["alg"]
        if alg == "none":
            token = jwt.encode(claims, None, algorithm="none", headers=header)
        elif alg.startswith("HS"):
            token = jwt.encode(claims, "a shared secret", algorithm=alg, headers=header)
        else:
            token = jwt.encode(claims, private[t["signWith"] if "signWith" in t else t["kid"]], algorithm=alg, headers=header)
        if t.get("tamper"):
            h, p, s = token.split(".")
            body = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
            body["sub"] = "someone-else"
            token = h + "." + b64(json.dumps(body).encode()) + "." + s
        tokens[name] = token
    json.dump({"jwks": {"keys": jwks}, "allJwks": {"keys": every}, "tokens": tokens}, sys.stdout)


main()
