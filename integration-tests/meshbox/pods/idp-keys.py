#!/usr/bin/env python3
"""The sample identity provider's signing key, made when its pod first starts (never committed).

idp-keys.py DIR writes DIR/key.pem (an RSA 2048 private key from openssl, mode 0600) and
DIR/jwks.json (its public half as a JSON Web Key Set, kid "meshbox-1", alg RS256), unless
DIR/key.pem exists already: a pod restarted keeps its key, so tokens minted before stay valid.
Only openssl (which meshbox needs anyway) and Python's standard library: the box comes up without
python3-jwt, which only pods/mint-token.py needs.
"""
import base64
import json
import os
import subprocess
import sys

KID = "meshbox-1"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main(directory):
    key_file = os.path.join(directory, "key.pem")
    if os.path.exists(key_file):
        return
    os.makedirs(directory, mode=0o700, exist_ok=True)
    old = os.umask(0o077)
    try:
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-pkeyopt", "rsa_keygen_pubexp:65537", "-quiet", "-out", key_file + ".tmp"], check=True)
    finally:
        os.umask(old)
    modulus = subprocess.run(["openssl", "rsa", "-in", key_file + ".tmp", "-noout", "-modulus"], check=True,
                             capture_output=True, text=True).stdout.strip().removeprefix("Modulus=")
    jwks = {"keys": [{"kty": "RSA", "kid": KID, "alg": "RS256", "use": "sig",
                      "n": b64url(bytes.fromhex(modulus)), "e": b64url((65537).to_bytes(3, "big"))}]}
    with open(os.path.join(directory, "jwks.json.tmp"), "w") as f:
        json.dump(jwks, f, indent=1)
    os.replace(os.path.join(directory, "jwks.json.tmp"), os.path.join(directory, "jwks.json"))
    os.replace(key_file + ".tmp", key_file)   # last: its presence means both files are whole


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: idp-keys.py DIR")
    main(sys.argv[1])
