"""An InferencePool endpoint picker (EPP) for the tests, speaking Envoy's ext_proc v3 API as
built from the published Envoy protos (`xds-protos`), in the full-duplex streamed mode the
Gateway API Inference Extension's pickers use: it reads the request headers and the whole
body, then answers the headers (the chosen endpoint as the `x-gateway-destination-endpoint`
header, and in the `envoy.lb` dynamic metadata) and streams the body back in two chunks.

Choice: the `x-target` header (an `ip:port`) if present, else the model of the body
(`model-a` -> the first endpoint, `model-b` -> the second); `alias-X` is rewritten to
`model-X` in the body it returns; model `shed` gets an immediate 429 in OpenAI's error
shape; model `outside` names an endpoint that is not in the pool."""

import json
from concurrent import futures

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as ep_grpc
from envoy.type.v3 import http_status_pb2
from google.protobuf import struct_pb2

DESTINATION = "x-gateway-destination-endpoint"


def header(key, value):
    return base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=key, raw_value=value.encode()))


class Picker(ep_grpc.ExternalProcessorServicer):
    def __init__(self, endpoints):
        self.endpoints = endpoints
        self.calls = []

    def Process(self, request_iterator, context):
        headers, body = {}, b""
        for req in request_iterator:
            which = req.WhichOneof("request")
            if which == "request_headers":
                for h in req.request_headers.headers.headers:
                    headers[h.key] = h.raw_value.decode() if h.raw_value else h.value
                if req.request_headers.end_of_stream:
                    break
            elif which == "request_body":
                body += req.request_body.body
                if req.request_body.end_of_stream:
                    break
        data = json.loads(body) if body else {}
        model = data.get("model", "")
        self.calls.append({"headers": headers, "model": model})
        if model == "shed":
            err = {"error": {"message": "shed by the endpoint picker", "type": "rate_limit_exceeded"}}
            yield ep.ProcessingResponse(immediate_response=ep.ImmediateResponse(
                status=http_status_pb2.HttpStatus(code=429),
                headers=ep.HeaderMutation(set_headers=[header("content-type", "application/json")]),
                body=json.dumps(err).encode(),
            ))
            return
        if model.startswith("alias-"):
            data["model"] = "model-" + model[len("alias-"):]
            body = json.dumps(data).encode()
        if "x-target" in headers:
            dest = headers["x-target"]
        elif model == "outside":
            dest = "127.0.0.1:1"
        else:
            dest = self.endpoints[1] if data.get("model") == "model-b" else self.endpoints[0]
        md = struct_pb2.Struct()
        md.update({"envoy.lb": {DESTINATION: dest}})
        yield ep.ProcessingResponse(
            request_headers=ep.HeadersResponse(response=ep.CommonResponse(
                header_mutation=ep.HeaderMutation(set_headers=[header(DESTINATION, dest), header("x-epp", "seen")]),
            )),
            dynamic_metadata=md,
        )
        half = len(body) // 2
        for part, eos in ((body[:half], False), (body[half:], True)):
            yield ep.ProcessingResponse(request_body=ep.BodyResponse(response=ep.CommonResponse(
                body_mutation=ep.BodyMutation(streamed_response=ep.StreamedBodyResponse(body=part, end_of_stream=eos)),
            )))


def serve(port, endpoints):
    """Starts the picker on 127.0.0.1:port choosing among `endpoints` ("ip:port");
    returns (server, servicer)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    servicer = Picker(endpoints)
    ep_grpc.add_ExternalProcessorServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, servicer
