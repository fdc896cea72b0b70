"""Prints an iSHARE client assertion made by python-ishare's create_jwt, unchanged.

Used by tests/api/tls.rs to check that Sluis accepts what the reference Python client sends.
Usage: make_assertion.py KEY_PEM CLIENT_ID AUDIENCE CERT_PEM [CERT_PEM...]   (chain leaf first)
"""

import sys

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509 import load_pem_x509_certificates
from python_ishare import create_jwt


def main() -> None:
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    key_path, client_id, audience, *cert_paths = sys.argv[1:]
    with open(key_path, "rb") as f:
        private_key = load_pem_private_key(f.read(), password=None)
    chain = []
    for path in cert_paths:
        with open(path, "rb") as f:
            chain.extend(load_pem_x509_certificates(f.read()))
    payload = {"iss": client_id, "sub": client_id, "aud": audience}
    print(create_jwt(payload=payload, private_key=private_key, x5c_certificate_chain=chain))


if __name__ == "__main__":
    main()
