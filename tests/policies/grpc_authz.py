"""An Envoy ext_authz v3 gRPC service, built on the published Envoy API definitions
(`xds-protos`, the Python build of envoyproxy/data-plane-api): admits requests carrying
`x-allow: yes` and names the user for the upstream; refuses others with a denied response
(401 and a body), and records what each check request carried."""

from concurrent import futures

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from envoy.type.v3 import http_status_pb2
from google.rpc import code_pb2, status_pb2


class Authorization(external_auth_pb2_grpc.AuthorizationServicer):
    def __init__(self):
        self.checks = []

    def Check(self, request, context):
        http = request.attributes.request.http
        sock = request.attributes.source.address.socket_address
        self.checks.append({
            "method": http.method,
            "path": http.path,
            "host": http.host,
            "headers": dict(http.headers),
            "source": sock.address,
            "source_port": sock.port_value,
        })
        if http.headers.get("x-allow") == "yes":
            return external_auth_pb2.CheckResponse(
                status=status_pb2.Status(code=code_pb2.OK),
                ok_response=external_auth_pb2.OkHttpResponse(headers=[
                    base_pb2.HeaderValueOption(
                        header=base_pb2.HeaderValue(key="x-user-id", value="grpc-user-7")),
                    base_pb2.HeaderValueOption(
                        header=base_pb2.HeaderValue(key="x-not-listed", value="dropped")),
                ]),
            )
        return external_auth_pb2.CheckResponse(
            status=status_pb2.Status(code=code_pb2.PERMISSION_DENIED, message="no badge"),
            denied_response=external_auth_pb2.DeniedHttpResponse(
                status=http_status_pb2.HttpStatus(code=http_status_pb2.Unauthorized),
                body="badge required",
            ),
        )


def serve(port):
    """Starts the service on 127.0.0.1:port; returns (server, servicer)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = Authorization()
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, servicer
