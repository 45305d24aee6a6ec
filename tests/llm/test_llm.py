"""The LLM gateway driven by the official OpenAI and Anthropic Python SDKs."""

import json

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as gtypes


def oai(gw, prefix="/openai", **kw):
    return openai.OpenAI(base_url=gw.url(prefix) + "/v1", api_key="client-secret", max_retries=0, **kw)


def ant(gw, prefix="/anthropic"):
    return anthropic.Anthropic(base_url=gw.url(prefix), api_key="client-secret", max_retries=0)


TOOLS_OAI = [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
TOOLS_ANT = [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


def test_openai_chat_passthrough_injects_key(gateway):
    r = oai(gateway).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "hello from gpt-4o"
    assert r.usage.prompt_tokens == 11 and r.usage.completion_tokens == 7
    seen = gateway.last()
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["authorization"] == "Bearer sk-upstream-openai"
    assert "client-secret" not in json.dumps(seen["headers"])
    assert seen["body"]["model"] == "gpt-4o"


def test_openai_stream_hides_injected_usage_chunk(gateway):
    chunks = list(oai(gateway).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == "hello from gpt-4o"
    assert all(c.usage is None for c in chunks), "the client did not ask for usage"
    assert gateway.last()["body"]["stream_options"] == {"include_usage": True}


def test_openai_stream_keeps_requested_usage_chunk(gateway):
    chunks = list(oai(gateway).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7


def test_model_alias(gateway):
    r = oai(gateway).chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    assert gateway.last()["body"]["model"] == "gpt-fast-real"
    assert r.choices[0].message.content == "hello from gpt-fast-real"


def test_anthropic_messages_passthrough(gateway):
    r = ant(gateway).messages.create(model="claude-test-model", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    assert r.content[0].text == "hello from claude-test-model"
    seen = gateway.last()
    assert seen["path"] == "/v1/messages"
    assert seen["headers"]["x-api-key"] == "sk-ant-upstream"
    assert "client-secret" not in json.dumps(seen["headers"])


def test_anthropic_stream_passthrough(gateway):
    with ant(gateway).messages.stream(model="claude-test-model", max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text.strip() == "hello from claude-test-model"
    assert final.usage.output_tokens == 7


def test_anthropic_client_to_openai_upstream(gateway):
    r = ant(gateway, "/x-anthropic").messages.create(model="gpt-4o", max_tokens=50, system="be brief", messages=[{"role": "user", "content": "hi"}])
    assert r.content[0].text == "hello from gpt-4o"
    assert r.stop_reason == "end_turn"
    seen = gateway.last()
    assert seen["path"] == "/v1/chat/completions"
    assert seen["body"]["messages"][0] == {"role": "system", "content": "be brief"}
    assert seen["headers"]["authorization"] == "Bearer sk-upstream-openai"


def test_anthropic_client_to_openai_upstream_stream_and_tools(gateway):
    with ant(gateway, "/x-anthropic").messages.stream(model="gpt-4o", max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as s:
        assert "".join(s.text_stream).strip() == "hello from gpt-4o"
    r = ant(gateway, "/x-anthropic").messages.create(model="gpt-4o-tools", max_tokens=50, tools=TOOLS_ANT, messages=[{"role": "user", "content": "weather?"}])
    assert r.stop_reason == "tool_use"
    assert r.content[0].type == "tool_use" and r.content[0].input == {"city": "Paris"}
    with ant(gateway, "/x-anthropic").messages.stream(model="gpt-4o-tools", max_tokens=50, tools=TOOLS_ANT, messages=[{"role": "user", "content": "weather?"}]) as s:
        final = s.get_final_message()
    assert final.content[0].input == {"city": "Paris"}


def test_openai_client_to_anthropic_upstream(gateway):
    r = oai(gateway, "/x-openai").chat.completions.create(model="claude-haiku", messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "hello from claude-haiku"
    assert r.usage.prompt_tokens == 11  # 8 input + 3 cache read
    seen = gateway.last()
    assert seen["path"] == "/v1/messages"
    assert seen["body"]["system"] in ("be brief", [{"type": "text", "text": "be brief"}])
    assert seen["headers"]["x-api-key"] == "sk-ant-upstream"
    chunks = list(oai(gateway, "/x-openai").chat.completions.create(model="claude-haiku", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip() == "hello from claude-haiku"


def test_openai_client_tool_calls_through_anthropic(gateway):
    r = oai(gateway, "/x-openai").chat.completions.create(model="claude-tools", tools=TOOLS_OAI, messages=[{"role": "user", "content": "weather?"}])
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    chunks = list(oai(gateway, "/x-openai").chat.completions.create(model="claude-tools", tools=TOOLS_OAI, messages=[{"role": "user", "content": "weather?"}], stream=True))
    args = "".join(tc.function.arguments or "" for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or []))
    assert json.loads(args) == {"city": "Paris"}


def test_failover_to_next_provider_group(gateway):
    gateway.clear()
    r = oai(gateway, "/failover").chat.completions.create(model="anything", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "hello from claude-backup"
    seen = gateway.recorded()
    assert [s["body"]["model"] for s in seen] == ["primary-503", "claude-backup"]
    assert seen[0]["headers"]["authorization"] == "Bearer sk-primary"
    assert seen[1]["headers"]["x-api-key"] == "sk-ant-backup"


def test_failing_provider_is_ejected_after_consecutive_failures(gateway):
    gateway.clear()
    for _ in range(4):
        r = oai(gateway, "/ejecting").chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])
        assert r.choices[0].message.content == "hello from steady"
    models = [s["body"]["model"] for s in gateway.recorded()]
    # Two failovers, then the flaky provider is ejected and skipped.
    assert models == ["flaky-503", "steady", "flaky-503", "steady", "steady", "steady"], models


def test_upstream_errors_reach_sdk_as_proper_exceptions(gateway):
    with pytest.raises(openai.RateLimitError) as e:
        oai(gateway).chat.completions.create(model="gpt-429", messages=[{"role": "user", "content": "hi"}])
    assert "mock 429" in str(e.value)
    with pytest.raises(anthropic.InternalServerError):
        ant(gateway).messages.create(model="claude-500", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    # Translated: an Anthropic error body reaches the OpenAI client as an OpenAI error.
    with pytest.raises(openai.RateLimitError) as e:
        oai(gateway, "/x-openai").chat.completions.create(model="claude-429", messages=[{"role": "user", "content": "hi"}])
    assert "mock 429" in str(e.value)
    with pytest.raises(anthropic.RateLimitError):
        ant(gateway, "/x-anthropic").messages.create(model="gpt-429", max_tokens=10, messages=[{"role": "user", "content": "hi"}])


def test_gateway_errors_in_client_format(gateway):
    with pytest.raises(openai.APIStatusError) as e:
        oai(gateway, "/small").chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x" * 4096}])
    assert e.value.status_code == 413
    assert "exceeds" in e.value.body["message"]
    with pytest.raises(anthropic.APIStatusError) as ae:
        ant(gateway, "/small").messages.create(model="gpt-4o", max_tokens=5, messages=[{"role": "user", "content": "x" * 4096}])
    assert ae.value.status_code == 413
    assert ae.value.body["type"] == "error" and ae.value.body["error"]["type"] == "request_too_large"
    # Malformed JSON: a 400 in the Anthropic error format.
    r = httpx.post(gateway.url("/anthropic/v1/messages"), content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("size", [1024, 70 * 1024, 8 * 1024 * 1024])
@pytest.mark.parametrize("http2", [False, True])
def test_large_bodies(gateway, size, http2):
    client = httpx.Client(http1=not http2, http2=http2, timeout=60)
    r = oai(gateway, http_client=client).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x" * size}])
    assert r.choices[0].message.content == "hello from gpt-4o"
    r = ant(gateway, "/x-anthropic").messages.create(model="gpt-4o", max_tokens=10, messages=[{"role": "user", "content": "y" * size}])
    assert r.content[0].text == "hello from gpt-4o"
    # Failover re-sends (and re-translates) the whole body to the next provider.
    gateway.clear()
    r = oai(gateway, "/failover", http_client=client).chat.completions.create(model="m", messages=[{"role": "user", "content": "z" * size}])
    assert r.choices[0].message.content == "hello from claude-backup"
    seen = gateway.recorded()
    assert [s["body"].get("model") for s in seen] == ["primary-503", "claude-backup"]


def test_token_metrics(gateway):
    oai(gateway).chat.completions.create(model="metrics-model", messages=[{"role": "user", "content": "hi"}])
    m = gateway.metrics()
    line = [l for l in m.splitlines() if l.startswith("agora_gen_ai_client_token_usage_sum") and 'gen_ai_token_type="input"' in l and 'gen_ai_request_model="metrics-model"' in l]
    assert line and line[0].endswith(" 11"), line
    out = [l for l in m.splitlines() if l.startswith("agora_gen_ai_client_token_usage_sum") and 'gen_ai_token_type="output"' in l and 'gen_ai_request_model="metrics-model"' in l]
    assert out and out[0].endswith(" 7"), out
    assert 'gen_ai_system="openai"' in line[0] and 'gen_ai_operation_name="chat"' in line[0]
    assert "agora_gen_ai_server_time_to_first_token_bucket" in m
    assert "agora_gen_ai_server_request_duration_bucket" in m


def gem(gw, prefix="/gemini"):
    return genai.Client(api_key="client-secret", http_options=gtypes.HttpOptions(base_url=gw.url(prefix)))


def test_gemini_client_passthrough(gateway):
    client = gem(gateway)
    r = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert r.text == "hello from gemini-2.5-flash"
    assert r.usage_metadata.prompt_token_count == 9
    seen = gateway.last()
    assert seen["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert seen["headers"]["x-goog-api-key"] == "gemini-upstream-key"
    assert "client-secret" not in json.dumps(seen["headers"])
    text = "".join(c.text or "" for c in client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    assert text.strip() == "hello from gemini-2.5-flash"
    assert gateway.last()["path"].startswith("/v1beta/models/gemini-2.5-flash:streamGenerateContent")


def test_openai_and_anthropic_clients_to_gemini(gateway):
    r = oai(gateway, "/gemini").chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "hello from gemini-2.5-flash"
    assert r.usage.prompt_tokens == 9
    seen = gateway.last()
    assert seen["body"]["systemInstruction"]["parts"][0]["text"] == "be brief"
    chunks = list(oai(gateway, "/gemini").chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip() == "hello from gemini-2.5-flash"
    r = oai(gateway, "/gemini").chat.completions.create(model="gemini-tools", tools=TOOLS_OAI, messages=[{"role": "user", "content": "weather?"}])
    assert json.loads(r.choices[0].message.tool_calls[0].function.arguments) == {"city": "Paris"}
    m = ant(gateway, "/gemini").messages.create(model="gemini-2.5-flash", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    assert m.content[0].text == "hello from gemini-2.5-flash"
    with ant(gateway, "/gemini").messages.stream(model="gemini-2.5-flash", max_tokens=20, messages=[{"role": "user", "content": "hi"}]) as s:
        assert "".join(s.text_stream).strip() == "hello from gemini-2.5-flash"
    with pytest.raises(openai.RateLimitError):
        oai(gateway, "/gemini").chat.completions.create(model="gemini-429", messages=[{"role": "user", "content": "hi"}])


def test_vertex_paths_and_token(gateway):
    r = oai(gateway, "/vertex").chat.completions.create(model="gemini-2.5-pro", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "hello from gemini-2.5-pro"
    seen = gateway.last()
    assert seen["path"] == "/v1/projects/proj-1/locations/us-east5/publishers/google/models/gemini-2.5-pro:generateContent"
    assert seen["headers"]["authorization"] == "Bearer gcp-access-token"
    m = ant(gateway, "/vclaude").messages.create(model="anything", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    assert m.content[0].text == "hello from claude-vertex"
    seen = gateway.last()
    assert seen["path"] == "/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/claude-vertex:rawPredict"
    assert seen["body"]["anthropic_version"] == "vertex-2023-10-16" and "model" not in seen["body"]


def test_bedrock_converse_with_sigv4(gateway):
    r = oai(gateway, "/bedrock").chat.completions.create(model="anthropic.claude-3-haiku-20240307-v1:0", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "hello from anthropic.claude-3-haiku-20240307-v1:0"
    seen = gateway.last()
    assert seen["path"] == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    auth = seen["headers"]["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDTEST/") and "/us-west-2/bedrock/aws4_request" in auth
    assert "x-amz-date" in seen["headers"] and "x-amz-content-sha256" in seen["headers"]
    chunks = list(oai(gateway, "/bedrock").chat.completions.create(model="titan-x", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip() == "hello from titan-x"
    assert chunks[-1].usage.completion_tokens == 7
    with ant(gateway, "/bedrock").messages.stream(model="br-tools", max_tokens=20, tools=TOOLS_ANT, messages=[{"role": "user", "content": "weather?"}]) as s:
        final = s.get_final_message()
    assert final.content[0].input == {"city": "Paris"}
    with pytest.raises(openai.RateLimitError):
        oai(gateway, "/bedrock").chat.completions.create(model="br-429", messages=[{"role": "user", "content": "hi"}])


def test_azure_openai_deployment_path(gateway):
    r = oai(gateway, "/azure").chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "hello from gpt4o-dep"
    seen = gateway.last()
    assert seen["path"] == "/openai/deployments/gpt4o-dep/chat/completions?api-version=2024-10-21"
    assert seen["headers"]["api-key"] == "azure-key"
    assert "authorization" not in seen["headers"]


def test_other_paths_pass_through_with_credentials(gateway):
    # A stored response is not an API the gateway translates: it reaches the provider untouched.
    r = oai(gateway).responses.retrieve("resp_mock")
    assert r.id == "resp_mock"
    seen = gateway.last()
    assert seen["path"] == "/v1/responses/resp_mock"
    assert seen["headers"]["authorization"] == "Bearer sk-upstream-openai"
    m = gateway.metrics()
    assert any(l.startswith("agora_gen_ai_client_token_usage_sum") and 'gen_ai_operation_name="passthrough"' in l and 'gen_ai_token_type="input"' in l and l.endswith(" 5") for l in m.splitlines())


def test_ai_policies_shape_the_request(gateway):
    oai(gateway, "/shaped").chat.completions.create(model="gpt-4o", max_tokens=4000, messages=[{"role": "user", "content": "hi"}])
    body = gateway.last()["body"]
    assert body["temperature"] == 0.2 and body["max_tokens"] == 99
    assert body["messages"] == [
        {"role": "system", "content": "Follow the house rules."},
        {"role": "user", "content": "hi"},
        {"role": "user", "content": "Answer in one line."},
    ]
    # An Anthropic client on the same backend: the system prompt joins `system`, then the
    # request is translated for the OpenAI upstream.
    ant(gateway, "/shaped").messages.create(model="gpt-4o", max_tokens=10, system="client rules", messages=[{"role": "user", "content": "hi"}])
    body = gateway.last()["body"]
    assert body["messages"][0]["role"] == "system"
    assert "Follow the house rules." in json.dumps(body["messages"][0]) and "client rules" in json.dumps(body["messages"][0])
    assert body["messages"][-1] == {"role": "user", "content": "Answer in one line."}
    assert body["max_tokens"] == 99


def test_provider_chosen_by_model(gateway):
    r = oai(gateway, "/by-model").chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "hello from gpt-4o"
    assert gateway.last()["path"] == "/v1/chat/completions"
    r = oai(gateway, "/by-model").chat.completions.create(model="claude-haiku", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "hello from claude-haiku"
    seen = gateway.last()
    assert seen["path"] == "/v1/messages" and seen["headers"]["x-api-key"] == "k-anthropic"
    with pytest.raises(openai.NotFoundError) as e:
        oai(gateway, "/by-model").chat.completions.create(model="llama-3", messages=[{"role": "user", "content": "hi"}])
    assert "llama-3" in str(e.value)


def test_vendor_preset(gateway):
    r = oai(gateway, "/preset").chat.completions.create(model="anything", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "hello from llama-3.1-8b-instant"
    seen = gateway.last()
    assert seen["path"] == "/openai/v1/chat/completions"
    assert seen["headers"]["authorization"] == "Bearer gsk-test"


def test_embeddings_models_and_count_tokens(gateway):
    e = oai(gateway).embeddings.create(model="text-embedding-3-small", input="hi")
    assert e.data[0].embedding == [0.1, 0.2]
    assert gateway.last()["path"] == "/v1/embeddings"
    models = oai(gateway).models.list()
    assert [m.id for m in models.data] == ["mock-model"]
    assert gateway.last()["path"] == "/v1/models"
    assert gateway.last()["headers"]["authorization"] == "Bearer sk-upstream-openai"
    n = ant(gateway).messages.count_tokens(model="claude-x", messages=[{"role": "user", "content": "hi"}])
    assert n.input_tokens == 12
    assert gateway.last()["path"] == "/v1/messages/count_tokens"
    with pytest.raises(anthropic.BadRequestError):
        # count_tokens has no OpenAI equivalent: a clear 400 in the Anthropic format.
        ant(gateway, "/x-anthropic").messages.count_tokens(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])


# ---- OpenAI Responses API ----

TOOLS_RESP = [{"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "strict": True}]


def token_sum(gw, kind, model, **labels):
    """The token usage sum of one kind for a request model (None if no series)."""
    for l in gw.metrics().splitlines():
        if l.startswith("agora_gen_ai_client_token_usage_sum") and f'gen_ai_token_type="{kind}"' in l and f'gen_ai_request_model="{model}"' in l and all(f'{k}="{v}"' in l for k, v in labels.items()):
            return float(l.rsplit(" ", 1)[1])
    return None


def test_responses_openai_provider_untouched(gateway):
    client = oai(gateway)
    raw = client.responses.with_raw_response.create(model="gpt-4.1", input="hi", instructions="be brief")
    r = raw.parse()
    assert r.output_text == "hello from gpt-4.1"
    seen = gateway.last()
    assert seen["path"] == "/v1/responses"
    assert seen["headers"]["authorization"] == "Bearer sk-upstream-openai"
    assert seen["body"] == {"model": "gpt-4.1", "input": "hi", "instructions": "be brief"}
    assert token_sum(gateway, "input", "gpt-4.1", gen_ai_operation_name="chat", gen_ai_system="openai") == 5


def test_responses_to_anthropic(gateway):
    client = oai(gateway, "/anthropic")
    r = client.responses.create(model="claude-resp", instructions="be brief", input="hi", max_output_tokens=50, temperature=0.3)
    assert r.output_text == "hello from claude-resp"
    assert r.status == "completed" and r.id.startswith("resp_")
    assert (r.usage.input_tokens, r.usage.input_tokens_details.cached_tokens, r.usage.output_tokens) == (11, 3, 7)
    seen = gateway.last()
    assert seen["path"] == "/v1/messages"
    assert seen["headers"]["x-api-key"] == "sk-ant-upstream"
    assert seen["body"]["system"] == "be brief"
    assert seen["body"]["messages"] == [{"role": "user", "content": "hi"}]
    assert (seen["body"]["max_tokens"], seen["body"]["temperature"]) == (50, 0.3)
    assert token_sum(gateway, "input", "claude-resp", gen_ai_operation_name="chat", gen_ai_system="anthropic") == 11

    # A function call round trip: the call, then its output sent back as history.
    r = client.responses.create(model="claude-tools", tools=TOOLS_RESP, input="weather in Paris?")
    call = r.output[0]
    assert (call.type, call.name, call.call_id, json.loads(call.arguments)) == ("function_call", "get_weather", "toolu_1", {"city": "Paris"})
    assert gateway.last()["body"]["tools"][0]["input_schema"]["required"] == ["city"]
    history = [{"role": "user", "content": "weather in Paris?"}] + [o.model_dump(exclude_none=True) for o in r.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "18C, cloudy"})
    r = client.responses.create(model="claude-resp", tools=TOOLS_RESP, input=history)
    assert r.output_text == "hello from claude-resp"
    messages = gateway.last()["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]
    assert messages[2]["content"][0] == {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C, cloudy"}

    # Streaming, raw events.
    events = list(client.responses.create(model="claude-resp", input="hi", stream=True))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "hello from claude-resp "
    done = events[-1].response
    assert done.output_text == "hello from claude-resp "
    assert (done.usage.input_tokens, done.usage.output_tokens) == (11, 7)
    assert gateway.last()["body"]["stream"] is True

    # Streaming a tool call with the SDK's stream helper.
    with client.responses.stream(model="claude-tools", tools=TOOLS_RESP, input="weather?") as s:
        deltas = [e.delta for e in s if e.type == "response.function_call_arguments.delta"]
        final = s.get_final_response()
    assert "".join(deltas) == '{"city": "Paris"}'
    assert final.output[0].type == "function_call" and json.loads(final.output[0].arguments) == {"city": "Paris"}

    # Upstream errors come back in OpenAI's shape.
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="claude-429", input="hi")
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="claude-resp", input="hi", previous_response_id="resp_1")
    assert "previous_response_id" in e.value.message


def test_responses_stream_cut_by_the_token_limit_is_incomplete(gateway):
    # Anthropic stops at max_tokens (chat finish_reason `length`): response.incomplete.
    events = list(oai(gateway, "/anthropic").responses.create(model="claude-length", input="hi", stream=True))
    types = [e.type for e in events]
    assert types[-1] == "response.incomplete", types
    assert "response.completed" not in types
    done = events[-1].response
    assert done.status == "incomplete"
    assert done.incomplete_details.reason == "max_output_tokens"
    assert done.output_text == "hello from claude-length "
    assert (done.usage.input_tokens, done.usage.output_tokens) == (11, 7)


def test_responses_to_bedrock(gateway):
    client = oai(gateway, "/bedrock")
    r = client.responses.create(model="anthropic.claude-3-haiku-20240307-v1:0", input="hi", max_output_tokens=30)
    assert r.output_text == "hello from anthropic.claude-3-haiku-20240307-v1:0"
    assert (r.usage.input_tokens, r.usage.output_tokens) == (10, 7)
    seen = gateway.last()
    assert seen["path"] == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    assert seen["body"]["inferenceConfig"]["maxTokens"] == 30
    assert seen["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 ")

    with client.responses.stream(model="br-tools", tools=TOOLS_RESP, input="weather?") as s:
        final = s.get_final_response()
    call = final.output[0]
    assert (call.type, call.name, call.call_id, json.loads(call.arguments)) == ("function_call", "get_weather", "tooluse_1", {"city": "Paris"})
    assert final.usage.input_tokens == 10 and final.usage.output_tokens == 7
    seen = gateway.last()
    assert seen["path"] == "/model/br-tools/converse-stream"
    assert seen["body"]["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"

    r = client.responses.create(model="br-text", input=[
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "tooluse_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": "tooluse_1", "output": "18C"},
    ], tools=TOOLS_RESP)
    assert r.output_text == "hello from br-text"
    msgs = gateway.last()["body"]["messages"]
    assert msgs[1]["content"][0]["toolUse"]["toolUseId"] == "tooluse_1"
    assert msgs[2]["content"][0]["toolResult"]["toolUseId"] == "tooluse_1"


def test_responses_to_gemini(gateway):
    client = oai(gateway, "/gemini")
    image = "data:image/png;base64,iVBORw0KGgo="
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"], "additionalProperties": False}
    r = client.responses.create(
        model="gemini-2.5-flash",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "what is this?"}, {"type": "input_image", "image_url": image, "detail": "auto"}]}],
        text={"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}},
        top_p=0.5,
    )
    assert r.output_text == "hello from gemini-2.5-flash"
    assert (r.usage.input_tokens, r.usage.input_tokens_details.cached_tokens, r.usage.output_tokens) == (9, 2, 7)
    seen = gateway.last()
    assert seen["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert seen["body"]["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    config = seen["body"]["generationConfig"]
    assert config["responseMimeType"] == "application/json" and config["responseSchema"]["required"] == ["answer"]
    assert config["topP"] == 0.5

    events = list(client.responses.create(model="gemini-2.5-flash", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text.strip() == "hello from gemini-2.5-flash"
    assert events[-1].response.usage.input_tokens == 9
    assert gateway.last()["path"].startswith("/v1beta/models/gemini-2.5-flash:streamGenerateContent")


def test_responses_to_azure_v1_path(gateway):
    r = oai(gateway, "/azure").responses.create(model="gpt-4o", input="hi")
    assert r.output_text == "hello from gpt4o-dep"
    seen = gateway.last()
    assert seen["path"] == "/openai/v1/responses"
    assert seen["headers"]["api-key"] == "azure-key"
    assert seen["body"]["model"] == "gpt4o-dep"


def test_responses_shaped_by_request_policies(gateway):
    r = oai(gateway, "/shaped").responses.create(model="gpt-4.1", input="hi")
    assert r.output_text == "hello from gpt-4.1"
    body = gateway.last()["body"]
    assert body["input"] == [
        {"role": "system", "content": "Follow the house rules."},
        {"role": "user", "content": "hi"},
        {"role": "user", "content": "Answer in one line."},
    ]
    assert body["temperature"] == 0.2
    # The policy's max_tokens is the Responses API's max_output_tokens.
    assert body["max_output_tokens"] == 99 and "max_tokens" not in body


def test_virtual_model_weighted_across_providers(gateway):
    gateway.clear()
    answers = []
    for _ in range(40):
        r = oai(gateway, "/virtual").chat.completions.create(model="split", messages=[{"role": "user", "content": "hi"}])
        answers.append(r.choices[0].message.content)
    seen = gateway.recorded()
    assert len(seen) == 40
    to_openai = [s for s in seen if s["path"] == "/v1/chat/completions"]
    to_anthropic = [s for s in seen if s["path"] == "/v1/messages"]
    assert len(to_openai) + len(to_anthropic) == 40
    # Weights 3:1 over 40 requests: both are reached, OpenAI more often.
    assert to_anthropic and len(to_openai) > len(to_anthropic), (len(to_openai), len(to_anthropic))
    assert {s["body"]["model"] for s in to_openai} == {"gpt-4o"}
    assert {s["body"]["model"] for s in to_anthropic} == {"claude-sonnet-4-5"}
    assert {s["headers"]["authorization"] for s in to_openai} == {"Bearer k-vo"}
    assert {s["headers"]["x-api-key"] for s in to_anthropic} == {"k-va"}
    # The Anthropic answer reaches the OpenAI client translated.
    assert set(answers) == {"hello from gpt-4o", "hello from claude-sonnet-4-5"}
    m = gateway.metrics()
    lines = [l for l in m.splitlines() if l.startswith("agora_gen_ai_client_token_usage_count") and 'gen_ai_request_model="split"' in l and 'gen_ai_token_type="input"' in l]
    assert any('gen_ai_response_model="claude-sonnet-4-5"' in l for l in lines), lines
    assert any('gen_ai_response_model="gpt-4o"' in l for l in lines), lines


def test_virtual_model_fails_over_by_priority_with_each_targets_model(gateway):
    gateway.clear()
    r = oai(gateway, "/virtual").chat.completions.create(model="sturdy", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "hello from claude-fallback"
    seen = gateway.recorded()
    assert [(s["path"], s["body"]["model"]) for s in seen] == [
        ("/v1/chat/completions", "gpt-primary-503"),
        ("/v1/chat/completions", "gpt-second-429"),
        ("/v1/messages", "claude-fallback"),
    ]
    # An Anthropic client fails over the same way.
    gateway.clear()
    r = ant(gateway, "/virtual").messages.create(model="sturdy", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert r.content[0].text == "hello from claude-fallback"
    assert [s["body"]["model"] for s in gateway.recorded()] == ["gpt-primary-503", "gpt-second-429", "claude-fallback"]
    # The access log names the provider and the concrete model of the last attempt.
    line = [l for l in gateway.access_lines() if l["route"].endswith("virtual") and l.get("request_model") == "sturdy"][-1]
    assert (line["provider"], line["model"], line["attempts"], line["status"]) == ("va", "claude-fallback", 3, 200), line


@pytest.mark.parametrize("http2", [False, True])
def test_virtual_model_failover_with_a_large_body(gateway, http2):
    # Past 64 KiB the body is replayed through a subrequest, which keeps the chosen targets.
    client = httpx.Client(http1=not http2, http2=http2, timeout=60)
    gateway.clear()
    r = oai(gateway, "/virtual", http_client=client).chat.completions.create(model="sturdy", messages=[{"role": "user", "content": "z" * (70 * 1024)}])
    assert r.choices[0].message.content == "hello from claude-fallback"
    seen = gateway.recorded()
    assert [s["body"]["model"] for s in seen] == ["gpt-primary-503", "gpt-second-429", "claude-fallback"]
    assert len(seen[-1]["body"]["messages"][0]["content"]) == 70 * 1024


@pytest.mark.parametrize("size", [100, 70 * 1024])
def test_virtual_model_target_chosen_by_header(gateway, size):
    msgs = [{"role": "user", "content": "x" * size}]
    gateway.clear()
    r = oai(gateway, "/virtual").chat.completions.create(model="tiered", messages=msgs, extra_headers={"x-tier": "premium"})
    assert r.choices[0].message.content == "hello from claude-opus-4-1"
    assert [s["body"]["model"] for s in gateway.recorded()] == ["claude-opus-4-1"]
    gateway.clear()
    for headers in ({"x-tier": "free"}, {}):
        r = oai(gateway, "/virtual").chat.completions.create(model="tiered", messages=msgs, extra_headers=headers)
        assert r.choices[0].message.content == "hello from gpt-4o-mini"
    assert [s["body"]["model"] for s in gateway.recorded()] == ["gpt-4o-mini", "gpt-4o-mini"]


def test_virtual_model_without_a_matching_target(gateway):
    r = oai(gateway, "/virtual").chat.completions.create(model="members", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-team": "core"})
    assert r.choices[0].message.content == "hello from gpt-4o"
    with pytest.raises(openai.NotFoundError) as e:
        oai(gateway, "/virtual").chat.completions.create(model="members", messages=[{"role": "user", "content": "hi"}])
    assert "members" in str(e.value)
