"""TCPRoutes and TLSRoutes end to end: Gateway API YAML in a directory -> agora-controller ->
delta xDS -> agora-proxy -> loopback backends. Real TCP bytes through a TCPRoute (half-close
included), real TLS through TLSRoutes in Passthrough (the backend chosen by SNI presents its
own certificate) and in Terminate (the listener's certificate from a Secret, plaintext to the
backend), and what is refused: an unknown server name, a TLSRoute whose only backend is
missing."""

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("AGORA_BIN_DIR", ROOT / "target" / "debug"))
sys.path.insert(0, str(ROOT / "tests"))
from support import free_port  # noqa: E402


class Ca:
    """A throwaway CA issuing leaf certificates for loopback tests."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agora l4 test CA")])
        now = datetime.now(timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.pem_path = tmp / "ca.pem"
        self.pem_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def leaf(self, host: str) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) for `host`."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    def client(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pem_path))
        ctx.check_hostname = True
        return ctx

    def server(self, host: str) -> ssl.SSLContext:
        cert, key = self.leaf(host)
        (self.tmp / f"{host}.crt").write_bytes(cert)
        (self.tmp / f"{host}.key").write_bytes(key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.tmp / f"{host}.crt", self.tmp / f"{host}.key")
        return ctx


def serve_echo(conn: socket.socket, prefix: bytes):
    """Sends `prefix`, echoes until the client half-closes, then closes."""
    with conn:
        try:
            conn.sendall(prefix)
            while data := conn.recv(65536):
                conn.sendall(data)
            if isinstance(conn, ssl.SSLSocket):
                conn.unwrap()
            else:
                conn.shutdown(socket.SHUT_WR)
        except (OSError, ssl.SSLError):
            pass


def start_server(prefix: bytes, tls: ssl.SSLContext | None = None) -> int:
    """A loopback echo server (TLS with `tls`); returns its port."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def accept():
        while True:
            conn, _ = srv.accept()
            if tls is not None:
                try:
                    conn = tls.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError):
                    conn.close()
                    continue
            threading.Thread(target=serve_echo, args=(conn, prefix), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return port


def tcp_round_trip(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)  # half-close: the answer still comes back
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def tls_round_trip(ctx: ssl.SSLContext, port: int, sni: str, payload: bytes,
                   expect: int) -> tuple[bytes, dict]:
    """Sends `payload` over TLS with server name `sni`; returns the first `expect` bytes of the
    answer and the certificate the client verified."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            cert = s.getpeercert()
            s.sendall(payload)
            out = b""
            while len(out) < expect and (chunk := s.recv(65536)):
                out += chunk
            return out, cert


def common_name(cert: dict) -> str:
    return next(v for rdn in cert["subject"] for (k, v) in rdn if k == "commonName")


def service(name: str, backend_port: int, port: int = 7000) -> str:
    """A Service `name` (port `port`) whose one endpoint is 127.0.0.1:`backend_port`."""
    return f"""---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: l4}}
spec: {{ports: [{{name: main, port: {port}}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-1
  namespace: l4
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: main, port: {backend_port}}}]
endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: true}}}}]
"""


def indent(pem: bytes, n: int) -> str:
    return "".join(" " * n + line + "\n" for line in pem.decode().splitlines())


class Stack:
    """The controller on a manifest directory and one proxy for `gateway`, listener ports
    mapped to free local ones."""

    def __init__(self, manifests: Path, gateway: str, ports: list[int]):
        self.status_file = manifests.parent / "status.yaml"
        self.local = {p: free_port() for p in ports}
        self.admin, xds = f"127.0.0.1:{free_port()}", free_port()
        self.procs = [subprocess.Popen(
            [str(BIN / "agora-controller"), "--manifests", str(manifests),
             "--xds-listen", f"127.0.0.1:{xds}", "--status-file", str(self.status_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        time.sleep(0.3)
        port_map = ",".join(f"{p}={lp}" for p, lp in self.local.items())
        self.procs.append(subprocess.Popen(
            [str(BIN / "agora-proxy"), "--xds", f"http://127.0.0.1:{xds}", "--gateway", gateway,
             "--port-map", port_map, "--admin", self.admin, "--no-access-log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.time() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://{self.admin}/readyz", timeout=1):
                    break
            except Exception:
                assert time.time() < deadline, "proxy never became ready"
                time.sleep(0.05)

    def status(self, kind: str, name: str, pred, timeout: float = 10) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                for s in yaml.safe_load(self.status_file.read_text()) or []:
                    if s["kind"] == kind and s["name"] == name and pred(s["status"]):
                        return s["status"]
            except (OSError, yaml.YAMLError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"{kind} {name}: status never matched")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://{self.admin}/metrics", timeout=5) as r:
            return r.read().decode()

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            p.wait(10)


def conditions(status: dict) -> dict:
    return {c["type"]: c["status"] for p in status.get("parents", []) for c in p["conditions"]}


def eventually(check, timeout: float = 10):
    """Retries `check` until it passes (the proxy may not have the config yet)."""
    deadline = time.time() + timeout
    while True:
        try:
            return check()
        except (AssertionError, OSError, ssl.SSLError):
            if time.time() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture()
def stack(tmp_path):
    ca = Ca(tmp_path)
    echo = start_server(b"echo:")
    a = start_server(b"a.example.com:", ca.server("a.example.com"))
    b = start_server(b"b.example.com:", ca.server("b.example.com"))
    term_cert, term_key = ca.leaf("t.example.com")
    m = tmp_path / "m"
    m.mkdir()
    (m / "gateway.yaml").write_text(f"""
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: agora}}
spec: {{controllerName: agora.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: l4}}
spec:
  gatewayClassName: agora
  listeners:
  - {{name: tcp, port: 9000, protocol: TCP}}
  - name: passthrough
    port: 9443
    protocol: TLS
    hostname: "*.example.com"
    tls: {{mode: Passthrough}}
  - name: terminate
    port: 9444
    protocol: TLS
    hostname: t.example.com
    tls: {{mode: Terminate, certificateRefs: [{{name: t-cert}}]}}
---
apiVersion: v1
kind: Secret
metadata: {{name: t-cert, namespace: l4}}
type: kubernetes.io/tls
stringData:
  tls.crt: |
{indent(term_cert, 4)}  tls.key: |
{indent(term_key, 4)}""")
    (m / "routes.yaml").write_text(f"""
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {{name: echo, namespace: l4}}
spec:
  parentRefs: [{{name: gw, sectionName: tcp}}]
  rules: [{{backendRefs: [{{name: echo, port: 7000}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {{name: a, namespace: l4}}
spec:
  parentRefs: [{{name: gw, sectionName: passthrough}}]
  hostnames: [a.example.com]
  rules: [{{backendRefs: [{{name: tls-a, port: 443}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {{name: b, namespace: l4}}
spec:
  parentRefs: [{{name: gw, port: 9443}}]
  hostnames: [b.example.com]
  rules: [{{backendRefs: [{{name: tls-b, port: 443}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {{name: missing, namespace: l4}}
spec:
  parentRefs: [{{name: gw, sectionName: passthrough}}]
  hostnames: [missing.example.com]
  rules: [{{backendRefs: [{{name: nowhere, port: 443}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {{name: t, namespace: l4}}
spec:
  parentRefs: [{{name: gw, sectionName: terminate}}]
  hostnames: [t.example.com]
  rules: [{{backendRefs: [{{name: echo, port: 7000}}]}}]
{service("echo", echo)}{service("tls-a", a, 443)}{service("tls-b", b, 443)}""")
    st = Stack(m, "l4/gw", [9000, 9443, 9444])
    try:
        yield st, ca
    finally:
        st.stop()


def test_tcp_route_forwards_bytes_both_ways(stack):
    st, _ = stack
    route = st.status("TCPRoute", "echo", lambda s: conditions(s).get("ResolvedRefs") == "True")
    assert conditions(route)["Accepted"] == "True"
    payload = os.urandom(300_000)
    got = eventually(lambda: tcp_round_trip(st.local[9000], payload))
    assert got == b"echo:" + payload


def test_tls_passthrough_routes_by_sni_to_the_backends_certificate(stack):
    st, ca = stack
    gw = st.status("Gateway", "gw", lambda s: any(l["attachedRoutes"] == 3 for l in s["listeners"]))
    attached = {l["name"]: l["attachedRoutes"] for l in gw["listeners"]}
    assert attached == {"tcp": 1, "passthrough": 3, "terminate": 1}, attached
    missing = st.status("TLSRoute", "missing", lambda s: "ResolvedRefs" in conditions(s))
    assert conditions(missing) == {"Accepted": "True", "ResolvedRefs": "False"}
    for host in ("a.example.com", "b.example.com"):
        # The client verifies the certificate against `host`: only the backend holds one.
        want = f"{host}:ping".encode()
        got, cert = eventually(
            lambda: tls_round_trip(ca.client(), st.local[9443], host, b"ping", len(want)))
        assert common_name(cert) == host
        assert got == want
    # A name no route takes, and a route whose backend does not exist: refused.
    for host in ("c.example.com", "missing.example.com"):
        with pytest.raises((ssl.SSLError, OSError)):
            tls_round_trip(ca.client(), st.local[9443], host, b"ping", 1)
    metrics = eventually(lambda: _has(st.metrics(), 'result="no_route"'))
    assert 'route="l4/a"' in metrics and 'result="invalid_backend"' in metrics


def test_tls_terminate_uses_the_listener_certificate(stack):
    st, ca = stack
    st.status("TLSRoute", "t", lambda s: conditions(s).get("Accepted") == "True")
    got, cert = eventually(
        lambda: tls_round_trip(ca.client(), st.local[9444], "t.example.com", b"hi", 7))
    assert common_name(cert) == "t.example.com"
    assert got == b"echo:hi"


def _has(text: str, needle: str) -> str:
    assert needle in text, needle
    return text
