"""Cloud credentials the gateway obtains itself, end to end:

- Vertex AI with a generated service-account key: the proxy signs a JWT assertion, a mock
  token endpoint verifies its signature and claims and hands out a token, and the mock
  Vertex sees `Authorization: Bearer <that token>`; the token is cached.
- Vertex AI with Application Default Credentials from a mock GCE metadata server.
- Bedrock with the default AWS chain through web identity (IRSA): a mock STS answers
  AssumeRoleWithWebIdentity, and the mock Bedrock gets a SigV4 signature with the STS
  access key id and session token.
- A token endpoint that refuses: a 503 in the client's API format, nothing secret logged.
"""

import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anthropic
import openai
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from conftest import HERE, ROOT, free_port, wait_http

SA_EMAIL = "gateway@proj-1.iam.gserviceaccount.com"
MINTED = "ya29.e2e-minted-token"
GCE_TOKEN = "ya29.e2e-metadata-token"
STS_KEY_ID = "ASIAE2ESTSKEYID"
STS_SECRET = "e2e-sts-secret-key"
STS_SESSION = "e2e-sts-session-token"
WEB_IDENTITY = "eyJ.e2e-projected-service-account-token"
ROLE_ARN = "arn:aws:iam::123456789012:role/bedrock-invoker"

CONFIG = """
gateway: test/cloud-auth
binds:
- port: {port}
  listeners:
  - name: http
    routes:
    - name: vertex-sa
      matches: [{{path: {{type: PathPrefix, value: /vertex-sa}}}}]
      backendRefs: [{{name: vertex-sa}}]
    - name: vertex-adc
      matches: [{{path: {{type: PathPrefix, value: /vertex-adc}}}}]
      backendRefs: [{{name: vertex-adc}}]
    - name: vertex-refused
      matches: [{{path: {{type: PathPrefix, value: /vertex-refused}}}}]
      backendRefs: [{{name: vertex-refused}}]
    - name: bedrock
      matches: [{{path: {{type: PathPrefix, value: /bedrock}}}}]
      backendRefs: [{{name: bedrock}}]
backends:
- name: vertex-sa
  ai:
    provider: {{vertexai: {{projectId: proj-1, region: us-east5}}, host: 127.0.0.1, port: {mock}}}
  policies:
    auth: {{gcp: {{serviceAccountKeyFile: sa.json}}}}
- name: vertex-adc
  ai:
    provider: {{vertexai: {{projectId: proj-1, region: us-east5}}, host: 127.0.0.1, port: {mock}}}
  policies:
    auth: {{gcp: {{}}}}
- name: vertex-refused
  ai:
    provider: {{vertexai: {{projectId: proj-1, region: us-east5, model: claude-vertex}}, host: 127.0.0.1, port: {mock}}}
  policies:
    auth: {{gcp: {{serviceAccountKey: {refused_key}}}}}
- name: bedrock
  ai:
    provider: {{bedrock: {{region: us-west-2}}, host: 127.0.0.1, port: {mock}}}
  policies:
    auth: {{aws: {{}}}}
"""


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class Auth:
    """The mock token endpoint, GCE metadata server and STS, on one port."""

    def __init__(self, public_key, port):
        self.public_key = public_key
        self.port = port
        self.hits = {"token": 0, "refused": 0, "metadata": 0, "sts": 0}
        self.errors = []

    def handler(self):
        auth = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, status, body, ctype="application/json"):
                data = body.encode()
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/computeMetadata/v1/instance/service-accounts/default/token":
                    if self.headers.get("Metadata-Flavor") != "Google":
                        return self.reply(403, "missing Metadata-Flavor")
                    auth.hits["metadata"] += 1
                    return self.reply(200, json.dumps({"access_token": GCE_TOKEN, "expires_in": 3599, "token_type": "Bearer"}))
                self.reply(404, "{}")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
                form = dict(urllib.parse.parse_qsl(body))
                if self.path == "/token":
                    auth.hits["token"] += 1
                    problem = auth.check_assertion(form)
                    if problem:
                        auth.errors.append(problem)
                        return self.reply(400, json.dumps({"error": "invalid_grant", "error_description": problem}))
                    return self.reply(200, json.dumps({"access_token": MINTED, "expires_in": 3600, "token_type": "Bearer"}))
                if self.path == "/refused-token":
                    auth.hits["refused"] += 1
                    return self.reply(400, json.dumps({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}))
                if self.path == "/" and form.get("Action") == "AssumeRoleWithWebIdentity":
                    auth.hits["sts"] += 1
                    if form.get("WebIdentityToken") != WEB_IDENTITY or form.get("RoleArn") != ROLE_ARN:
                        auth.errors.append(f"bad STS request {sorted(form)}")
                        return self.reply(400, "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>no</Message></Error></ErrorResponse>", "text/xml")
                    exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
                    xml = (
                        '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                        "<AssumeRoleWithWebIdentityResult><Credentials>"
                        f"<AccessKeyId>{STS_KEY_ID}</AccessKeyId><SecretAccessKey>{STS_SECRET}</SecretAccessKey>"
                        f"<SessionToken>{STS_SESSION}</SessionToken><Expiration>{exp}</Expiration>"
                        "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
                    )
                    return self.reply(200, xml, "text/xml")
                self.reply(404, "{}")

        return H

    def check_assertion(self, form):
        """Verifies the RS256 JWT assertion with the service account's public key."""
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return f"grant_type {form.get('grant_type')!r}"
        try:
            head, claims, sig = form["assertion"].split(".")
            self.public_key.verify(b64url_decode(sig), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except Exception as e:  # noqa: BLE001
            return f"bad signature: {e!r}"
        header, c = json.loads(b64url_decode(head)), json.loads(b64url_decode(claims))
        want = {"iss": SA_EMAIL, "sub": SA_EMAIL, "aud": f"http://127.0.0.1:{self.port}/token", "scope": "https://www.googleapis.com/auth/cloud-platform"}
        if header.get("alg") != "RS256" or any(c.get(k) != v for k, v in want.items()):
            return f"bad claims {c}"
        if not (c["exp"] - c["iat"] == 3600 and abs(c["iat"] - time.time()) < 60):
            return f"bad times {c}"
        return None


class Cloud:
    def __init__(self, port, admin, record, auth, log):
        self.port, self.admin, self.record, self.auth, self.log = port, admin, record, auth, log

    def url(self, prefix):
        return f"http://127.0.0.1:{self.port}{prefix}"

    def last(self):
        lines = [l for l in self.record.read_text().splitlines() if l.strip()]
        return json.loads(lines[-1])


@pytest.fixture(scope="module")
def cloud():
    binary = os.environ.get("AGORA_PROXY_BIN", str(ROOT / "target" / "debug" / "agora-proxy"))
    tmp = Path(tempfile.mkdtemp(prefix="agora-cloud-auth-"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    auth_port, mock_port, port, admin_port = free_port(), free_port(), free_port(), free_port()

    def sa(token_path):
        return {
            "type": "service_account",
            "project_id": "proj-1",
            "private_key_id": "e2e-key-1",
            "private_key": pem,
            "client_email": SA_EMAIL,
            "token_uri": f"http://127.0.0.1:{auth_port}{token_path}",
        }

    (tmp / "sa.json").write_text(json.dumps(sa("/token")))
    (tmp / "web-identity-token").write_text(WEB_IDENTITY + "\n")
    (tmp / "gcloud").mkdir()
    refused = json.dumps(json.dumps(sa("/refused-token")))
    (tmp / "config.yaml").write_text(CONFIG.format(port=port, mock=mock_port, refused_key=refused))

    auth = Auth(key.public_key(), auth_port)
    server = ThreadingHTTPServer(("127.0.0.1", auth_port), auth.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    record = tmp / "record.jsonl"
    record.write_text("")
    mock = subprocess.Popen([sys.executable, str(HERE / "mock_providers.py"), str(mock_port), str(record)])

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GOOGLE_", "GCE_"))}
    env.update({
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(tmp / "web-identity-token"),
        "AWS_ROLE_ARN": ROLE_ARN,
        "AWS_ROLE_SESSION_NAME": "agora-e2e",
        "AWS_ENDPOINT_URL_STS": f"http://127.0.0.1:{auth_port}",
        "AWS_EC2_METADATA_DISABLED": "true",
        "GCE_METADATA_HOST": f"127.0.0.1:{auth_port}",
        "CLOUDSDK_CONFIG": str(tmp / "gcloud"),
        "RUST_LOG": "debug",
    })
    log_path = tmp / "proxy.log"
    log = open(log_path, "w")
    proxy = subprocess.Popen(
        [binary, "-f", str(tmp / "config.yaml"), "--admin", f"127.0.0.1:{admin_port}"],
        stdout=log, stderr=log, env=env,
    )
    try:
        wait_http(f"http://127.0.0.1:{admin_port}/readyz")
        wait_http(f"http://127.0.0.1:{mock_port}/v1/models")
        yield Cloud(port, f"127.0.0.1:{admin_port}", record, auth, log_path)
    finally:
        proxy.terminate()
        mock.terminate()
        proxy.wait(10)
        mock.wait(10)
        server.shutdown()
        log.close()
        print(log_path.read_text()[-4000:])


def oai(c, prefix):
    return openai.OpenAI(base_url=c.url(prefix) + "/v1", api_key="client-secret", max_retries=0)


def test_cloud_auth_vertex_service_account_token(cloud):
    for _ in range(3):
        r = oai(cloud, "/vertex-sa").chat.completions.create(model="gemini-2.5-pro", messages=[{"role": "user", "content": "hi"}])
        assert r.choices[0].message.content == "hello from gemini-2.5-pro"
        seen = cloud.last()
        assert seen["path"] == "/v1/projects/proj-1/locations/us-east5/publishers/google/models/gemini-2.5-pro:generateContent"
        assert seen["headers"]["authorization"] == f"Bearer {MINTED}"
    assert cloud.auth.errors == []
    # Minted once, then served from the cache.
    assert cloud.auth.hits["token"] == 1


def test_cloud_auth_vertex_metadata_server(cloud):
    r = oai(cloud, "/vertex-adc").chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "hello from gemini-2.5-flash"
    assert cloud.last()["headers"]["authorization"] == f"Bearer {GCE_TOKEN}"
    assert cloud.auth.hits["metadata"] == 1


def test_cloud_auth_bedrock_web_identity(cloud):
    for _ in range(2):
        r = oai(cloud, "/bedrock").chat.completions.create(model="anthropic.claude-3-haiku-20240307-v1:0", messages=[{"role": "user", "content": "hi"}])
        assert r.choices[0].message.content == "hello from anthropic.claude-3-haiku-20240307-v1:0"
        h = cloud.last()["headers"]
        assert h["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={STS_KEY_ID}/")
        assert "/us-west-2/bedrock/aws4_request" in h["authorization"]
        assert h["x-amz-security-token"] == STS_SESSION
    assert cloud.auth.errors == []
    assert cloud.auth.hits["sts"] == 1


def test_cloud_auth_failure_is_a_503_in_the_client_format(cloud):
    with pytest.raises(openai.InternalServerError) as e:
        oai(cloud, "/vertex-refused").chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 503
    assert "cannot obtain credentials for provider" in str(e.value) and "invalid_grant" in str(e.value)
    c = anthropic.Anthropic(base_url=cloud.url("/vertex-refused"), api_key="client-secret", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as e:
        c.messages.create(model="x", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 503
    assert e.value.body["type"] == "error" and "invalid_grant" in e.value.body["error"]["message"]


def test_cloud_auth_secrets_stay_out_of_logs_and_dumps(cloud):
    # Make sure every source has been used at least once.
    oai(cloud, "/vertex-sa").chat.completions.create(model="g", messages=[{"role": "user", "content": "hi"}])
    oai(cloud, "/bedrock").chat.completions.create(model="b", messages=[{"role": "user", "content": "hi"}])
    with urllib.request.urlopen(f"http://{cloud.admin}/config_dump") as r:
        dump = r.read().decode()
    assert "PRIVATE KEY" not in dump and '"serviceAccountKey":"[redacted]"' in dump.replace(" ", "")
    time.sleep(0.2)
    log = cloud.log.read_text()
    assert "cannot obtain cloud credentials" in log
    for secret in (MINTED, GCE_TOKEN, STS_SECRET, STS_SESSION, WEB_IDENTITY, "PRIVATE KEY"):
        assert secret not in log, secret
