#!/usr/bin/python3
"""The sample identity provider's signing key, made when its pod first starts (never committed).

idp-keys.py DIR writes DIR/key.pem (an RSA 2048 private key, mode 0600) and DIR/jwks.json (its
public half as a JSON Web Key Set, kid "meshbox-1", alg RS256), unless DIR/key.pem exists already:
a pod restarted keeps its key, so tokens minted before stay valid. With python3-cryptography.
"""
import base64
import json
import os
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KID = "meshbox-1"


def b64url_uint(n):
    return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


def main(directory):
    key_file = os.path.join(directory, "key.pem")
    if os.path.exists(key_file):
        return
    os.makedirs(directory, mode=0o700, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    numbers = key.public_key().public_numbers()
    jwks = {"keys": [{"kty": "RSA", "kid": KID, "alg": "RS256", "use": "sig",
                      "n": b64url_uint(numbers.n), "e": b64url_uint(numbers.e)}]}
    with open(os.path.join(directory, "jwks.json.tmp"), "w") as f:
        json.dump(jwks, f, indent=1)
    os.replace(os.path.join(directory, "jwks.json.tmp"), os.path.join(directory, "jwks.json"))
    fd = os.open(key_file + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.replace(key_file + ".tmp", key_file)   # last: its presence means both files are whole


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: idp-keys.py DIR")
    main(sys.argv[1])
