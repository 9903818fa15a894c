#!/usr/bin/python3
"""Mints a JWT signed by the mesh in a box's identity provider (samples/jwt.yaml), on stdout.

    mint-token.py [--sub alice] [--claim groups=admins ...] [--ttl 3600] [--iss https://idp.example.com]

The key is the one the idp pod made at its start ($MESHBOX_DIR/idp/key.pem, MESHBOX_DIR defaulting to
/tmp/meshbox). A claim given once is a string, given several times a list (`--claim groups=admins
--claim groups=dev`); a negative --ttl mints a token that has expired. With python3-jwt.
"""
import argparse
import os
import sys
import time

try:
    import jwt
except ImportError:
    sys.exit("mint-token.py needs python3-jwt and python3-cryptography: apt-get install python3-jwt python3-cryptography")

ISSUER = "https://idp.example.com"
KID = "meshbox-1"


def main():
    p = argparse.ArgumentParser(description="mint a JWT for the mesh in a box")
    p.add_argument("--sub", default="alice")
    p.add_argument("--iss", default=ISSUER)
    p.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (negative: already expired)")
    p.add_argument("--claim", action="append", default=[], metavar="NAME=VALUE")
    a = p.parse_args()
    key_file = os.path.join(os.environ.get("MESHBOX_DIR", "/tmp/meshbox"), "idp", "key.pem")
    try:
        with open(key_file, "rb") as f:
            key = f.read()
    except OSError as e:
        sys.exit(f"mint-token.py: no key ({e}); is the box up with samples/jwt.yaml's idp pod?")
    now = int(time.time())
    claims = {"iss": a.iss, "sub": a.sub, "iat": now, "exp": now + a.ttl}
    for c in a.claim:
        name, sep, value = c.partition("=")
        if not sep or not name or name in ("iss", "sub", "iat", "exp"):
            sys.exit(f"mint-token.py: --claim {c!r}: expected NAME=VALUE, NAME not iss/sub/iat/exp")
        if name in claims:
            claims[name] = (claims[name] if isinstance(claims[name], list) else [claims[name]]) + [value]
        else:
            claims[name] = value
    print(jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID}))


if __name__ == "__main__":
    main()
