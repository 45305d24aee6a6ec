"""A mock LLM provider speaking the OpenAI chat completions and Anthropic messages wire
formats (JSON and SSE, tool calls, usage, error bodies), recording every request it gets.

Behaviour is chosen by the request's model name:
  *-429 / *-500 / *-503 : answer that status with the vendor's error body
  *-tools               : answer with a tool call to the first tool in the request
  anything else         : a short text answer echoing the model name

Usage: python mock_providers.py PORT RECORD_FILE
"""

import json
import re
import struct
import sys
import zlib
from urllib.parse import unquote
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RECORD_LOCK = threading.Lock()


def usage_openai(prompt=11, completion=7, cached=3):
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    record_file = None

    def log_message(self, *args):
        pass

    def _record(self, body):
        entry = {
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
        }
        with RECORD_LOCK, open(self.record_file, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def _send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_sse(self):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_chunks(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_GET(self):
        if "/responses/" in self.path:
            self._record(None)
            self._send_json(200, {"id": "resp_mock", "object": "response", "created_at": 1700000000, "status": "completed", "model": "gpt-4.1", "output": [], "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}})
        elif self.path.endswith("/models"):
            self._record(None)
            self._send_json(200, {"object": "list", "data": [{"id": "mock-model", "object": "model", "created": 0, "owned_by": "mock"}]})
        else:
            self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            self._record({"_raw_len": len(raw)})
            self._send_json(400, {"error": {"message": "bad json", "type": "invalid_request_error"}})
            return
        self._record(body if len(raw) < 200_000 else {"_len": len(raw), "model": body.get("model")})
        path = self.path.split("?")[0]
        gem = re.search(r"/models/([^/:]+):(generateContent|streamGenerateContent)$", path)
        vertex_claude = re.search(r"/publishers/anthropic/models/([^/:]+):(rawPredict|streamRawPredict)$", path)
        bedrock = re.match(r"^/model/([^/]+)/(converse|converse-stream)$", path)
        azure = re.match(r"^/openai/deployments/([^/]+)/chat/completions$", path)
        if gem:
            return self._gemini(body, gem.group(1), gem.group(2) == "streamGenerateContent")
        if vertex_claude:
            body["stream"] = vertex_claude.group(2) == "streamRawPredict"
            return self._with_errors(body, vertex_claude.group(1), lambda m: self._anthropic(body, m), "anthropic")
        if bedrock:
            return self._with_errors(body, unquote(bedrock.group(1)), lambda m: self._bedrock(body, m, bedrock.group(2) == "converse-stream"), "bedrock")
        if azure:
            return self._with_errors(body, azure.group(1), lambda m: self._openai(body, m), "openai")
        model = body.get("model", "")
        for code in (429, 500, 503):
            if model.endswith(f"-{code}"):
                return self._error(code)
        if self.path.endswith("/chat/completions"):
            return self._openai(body, model)
        if self.path.endswith("/messages"):
            return self._anthropic(body, model)
        if self.path.endswith("/messages/count_tokens"):
            return self._send_json(200, {"input_tokens": 12})
        if self.path.endswith("/responses"):
            return self._send_json(200, {"id": "resp_mock", "object": "response", "created_at": 1700000000, "status": "completed", "model": model, "output": [{"type": "message", "id": "msg_mock", "status": "completed", "role": "assistant", "content": [{"type": "output_text", "text": f"hello from {model}", "annotations": []}]}], "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8, "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}})
        if self.path.endswith("/embeddings"):
            return self._send_json(200, {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}], "model": model, "usage": {"prompt_tokens": 4, "total_tokens": 4}})
        self._send_json(404, {"error": {"message": "unknown path", "type": "invalid_request_error"}})

    def _with_errors(self, body, model, ok, kind):
        for code in (429, 500, 503):
            if model.endswith(f"-{code}"):
                if kind == "bedrock":
                    data = json.dumps({"message": f"mock {code}"}).encode()
                    self.send_response(code)
                    self.send_header("content-type", "application/json")
                    self.send_header("x-amzn-errortype", "ThrottlingException" if code == 429 else "InternalServerException")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return None
                return self._error(code)
        return ok(model)

    # ---- Gemini (AI Studio and Vertex) ----
    def _gemini(self, body, model, stream):
        for code in (429, 500, 503):
            if model.endswith(f"-{code}"):
                status = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}[code]
                return self._send_json(code, {"error": {"code": code, "message": f"mock {code}", "status": status}})
        tools = body.get("tools") or []
        decls = [d for t in tools for d in t.get("functionDeclarations", [])]
        usage = {"promptTokenCount": 9, "candidatesTokenCount": 7, "totalTokenCount": 16, "cachedContentTokenCount": 2}
        if model.endswith("-tools") and decls:
            parts = [{"functionCall": {"name": decls[0]["name"], "args": {"city": "Paris"}}}]
        else:
            parts = [{"text": f"hello from {model}"}]
        if not stream:
            return self._send_json(200, {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}], "usageMetadata": usage, "modelVersion": model, "responseId": "gem-1"})
        self._start_sse()
        pieces = parts if "functionCall" in parts[0] else [{"text": w + " "} for w in f"hello from {model}".split(" ")]
        for i, part in enumerate(pieces):
            obj = {"candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0}], "modelVersion": model, "responseId": "gem-1"}
            if i == len(pieces) - 1:
                obj["candidates"][0]["finishReason"] = "STOP"
                obj["usageMetadata"] = usage
            self._chunk(b"data: " + json.dumps(obj).encode() + b"\r\n\r\n")
            time.sleep(0.01)
        self._end_chunks()

    # ---- Bedrock Converse ----
    def _bedrock(self, body, model, stream):
        tools = (body.get("toolConfig") or {}).get("tools") or []
        usage = {"inputTokens": 10, "outputTokens": 7, "totalTokens": 17}
        use_tool = model.endswith("-tools") and tools
        if not stream:
            if use_tool:
                content = [{"toolUse": {"toolUseId": "tooluse_1", "name": tools[0]["toolSpec"]["name"], "input": {"city": "Paris"}}}]
                stop = "tool_use"
            else:
                content = [{"text": f"hello from {model}"}]
                stop = "end_turn"
            return self._send_json(200, {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop, "usage": usage, "metrics": {"latencyMs": 5}})
        self.send_response(200)
        self.send_header("content-type", "application/vnd.amazon.eventstream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def frame(event, payload):
            def header(name, value):
                n, v = name.encode(), value.encode()
                return bytes([len(n)]) + n + b"\x07" + struct.pack(">H", len(v)) + v
            headers = header(":event-type", event) + header(":content-type", "application/json") + header(":message-type", "event")
            data = json.dumps(payload).encode()
            total = 12 + len(headers) + len(data) + 4
            prelude = struct.pack(">II", total, len(headers))
            prelude += struct.pack(">I", zlib.crc32(prelude))
            msg = prelude + headers + data
            return msg + struct.pack(">I", zlib.crc32(msg))

        self._chunk(frame("messageStart", {"role": "assistant"}))
        if use_tool:
            self._chunk(frame("contentBlockStart", {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": tools[0]["toolSpec"]["name"]}}}))
            for part in ['{"city"', ': "Par', 'is"}']:
                self._chunk(frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": part}}}))
            self._chunk(frame("contentBlockStop", {"contentBlockIndex": 0}))
            stop = "tool_use"
        else:
            for w in f"hello from {model}".split(" "):
                self._chunk(frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": w + " "}}))
                time.sleep(0.01)
            self._chunk(frame("contentBlockStop", {"contentBlockIndex": 0}))
            stop = "end_turn"
        self._chunk(frame("messageStop", {"stopReason": stop}))
        self._chunk(frame("metadata", {"usage": usage, "metrics": {"latencyMs": 5}}))
        self._end_chunks()

    def _error(self, code):
        if self.path.endswith("/messages"):
            kind = {429: "rate_limit_error", 500: "api_error", 503: "overloaded_error"}[code]
            self._send_json(code, {"type": "error", "error": {"type": kind, "message": f"mock {code}"}})
        else:
            kind = {429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}[code]
            self._send_json(code, {"error": {"message": f"mock {code}", "type": kind, "param": None, "code": None}})

    # ---- OpenAI ----
    def _openai(self, body, model):
        tools = body.get("tools") or []
        text = f"hello from {model}"
        if body.get("stream"):
            self._start_sse()
            base = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1700000000, "model": model}

            def emit(choices, usage=None):
                obj = dict(base, choices=choices)
                if usage is not None:
                    obj["usage"] = usage
                elif (body.get("stream_options") or {}).get("include_usage"):
                    obj["usage"] = None
                self._chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")

            emit([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            if model.endswith("-tools") and tools:
                name = tools[0]["function"]["name"]
                emit([{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": name, "arguments": ""}}]}, "finish_reason": None}])
                for part in ['{"city"', ': "Par', 'is"}']:
                    emit([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}, "finish_reason": None}])
                emit([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])
            else:
                for word in text.split(" "):
                    emit([{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}])
                    time.sleep(0.01)
                emit([{"index": 0, "delta": {}, "finish_reason": "stop"}])
            if (body.get("stream_options") or {}).get("include_usage"):
                emit([], usage_openai())
            self._chunk(b"data: [DONE]\n\n")
            self._end_chunks()
            return
        message = {"role": "assistant", "content": text}
        finish = "stop"
        if model.endswith("-tools") and tools:
            message = {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": tools[0]["function"]["name"], "arguments": '{"city": "Paris"}'}}]}
            finish = "tool_calls"
        self._send_json(200, {"id": "chatcmpl-mock", "object": "chat.completion", "created": 1700000000, "model": model, "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}], "usage": usage_openai()})

    # ---- Anthropic ----
    def _anthropic(self, body, model):
        tools = body.get("tools") or []
        text = f"hello from {model}"
        usage = {"input_tokens": 8, "output_tokens": 7, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 0}
        if body.get("stream"):
            self._start_sse()

            def ev(name, obj):
                self._chunk(f"event: {name}\ndata: {json.dumps(obj)}\n\n".encode())

            ev("message_start", {"type": "message_start", "message": {"id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 8, "output_tokens": 1, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 0}}})
            ev("ping", {"type": "ping"})
            if model.endswith("-tools") and tools:
                ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": tools[0]["name"], "input": {}}})
                for part in ['{"city"', ': "Par', 'is"}']:
                    ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": part}})
                ev("content_block_stop", {"type": "content_block_stop", "index": 0})
                stop = "tool_use"
            else:
                ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
                for word in text.split(" "):
                    ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word + " "}})
                    time.sleep(0.01)
                ev("content_block_stop", {"type": "content_block_stop", "index": 0})
                # A model named `…-length` stops at its token limit.
                stop = "max_tokens" if model.endswith("-length") else "end_turn"
            ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 7}})
            ev("message_stop", {"type": "message_stop"})
            self._end_chunks()
            return
        content = [{"type": "text", "text": text}]
        stop = "end_turn"
        if model.endswith("-tools") and tools:
            content = [{"type": "tool_use", "id": "toolu_1", "name": tools[0]["name"], "input": {"city": "Paris"}}]
            stop = "tool_use"
        self._send_json(200, {"id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage})


def main():
    port = int(sys.argv[1])
    Handler.record_file = sys.argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
