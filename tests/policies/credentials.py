"""Test credentials: the JWT signing key (served by the fixture's JWKS endpoint) and
htpasswd lines without the htpasswd tool."""

import base64
import hashlib

JWT_SECRET = b"policy-test-secret-0123456789abcdef"
ISSUER = "https://idp.agora.test"


def sha1_line(user, password):
    """An htpasswd `{SHA}` line, as `htpasswd -s` writes it."""
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return f"{user}:{{SHA}}{digest}"
