"""Gemini clients (the official google-genai SDK) served by OpenAI-format, Anthropic, Bedrock,
Azure and Vertex Claude providers: generate_content and generate_content_stream, a function
calling round trip, usage, and errors in Google's shape."""

import pydantic
import pytest
from google import genai
from google.genai import errors as gerrors
from google.genai import types as gtypes


def gem(gw, prefix):
    return genai.Client(api_key="client-secret", http_options=gtypes.HttpOptions(base_url=gw.url(prefix)))


WEATHER = gtypes.Tool(function_declarations=[gtypes.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city",
    parameters=gtypes.Schema(type="OBJECT", properties={"city": gtypes.Schema(type="STRING", description="City name")}, required=["city"]),
)])
NO_AFC = gtypes.AutomaticFunctionCallingConfig(disable=True)

# Provider route → (upstream path, whether the body is in Anthropic's shape).
PROVIDERS = {
    "/openai": ("/v1/chat/completions", False),
    "/anthropic": ("/v1/messages", True),
}


@pytest.mark.parametrize("prefix", list(PROVIDERS))
def test_generate_content(gateway, prefix):
    path, anthropic = PROVIDERS[prefix]
    client = gem(gateway, prefix)
    config = gtypes.GenerateContentConfig(system_instruction="be brief", temperature=0.3, top_k=20, max_output_tokens=64, stop_sequences=["END"])
    r = client.models.generate_content(model="m1", contents="hi", config=config)
    assert r.text == "hello from m1"
    assert r.candidates[0].finish_reason == gtypes.FinishReason.STOP
    assert r.model_version == "m1"
    u = r.usage_metadata
    assert (u.prompt_token_count, u.candidates_token_count, u.total_token_count, u.cached_content_token_count) == (11, 7, 18, 3)
    seen = gateway.last()
    assert seen["path"] == path
    assert "client-secret" not in str(seen["headers"])
    body = seen["body"]
    assert body["model"] == "m1" and body["temperature"] == 0.3 and "stream" not in body
    if anthropic:
        assert body["system"] == "be brief"
        assert body["messages"] == [{"role": "user", "content": "hi"}]
        assert (body["max_tokens"], body["top_k"], body["stop_sequences"]) == (64, 20, ["END"])
    else:
        assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
        assert (body["max_completion_tokens"], body["stop"]) == (64, ["END"])
        assert "top_k" not in body


@pytest.mark.parametrize("prefix", list(PROVIDERS))
def test_function_calling_round_trip(gateway, prefix):
    path, anthropic = PROVIDERS[prefix]
    client = gem(gateway, prefix)
    config = gtypes.GenerateContentConfig(
        tools=[WEATHER],
        automatic_function_calling=NO_AFC,
        tool_config=gtypes.ToolConfig(function_calling_config=gtypes.FunctionCallingConfig(mode="ANY", allowed_function_names=["get_weather"])),
    )
    question = gtypes.Content(role="user", parts=[gtypes.Part.from_text(text="Weather in Paris?")])
    r = client.models.generate_content(model="m-tools", contents=[question], config=config)
    [call] = r.function_calls
    assert (call.name, call.args) == ("get_weather", {"city": "Paris"})
    assert call.id == ("toolu_1" if anthropic else "call_1")
    assert r.candidates[0].finish_reason == gtypes.FinishReason.STOP
    body = gateway.last()["body"]
    if anthropic:
        assert body["tools"] == [{"name": "get_weather", "description": "Weather for a city", "input_schema": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}}, "required": ["city"]}}]
        assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    else:
        assert body["tools"] == [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}}, "required": ["city"]}}}]
        assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}

    # The SDK's own history: the model's turn as returned, then the function's result.
    result = gtypes.Content(role="user", parts=[gtypes.Part.from_function_response(name="get_weather", response={"temp": 18})])
    r = client.models.generate_content(model="m1", contents=[question, r.candidates[0].content, result], config=gtypes.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=NO_AFC))
    assert r.text == "hello from m1"
    msgs = gateway.last()["body"]["messages"]
    if anthropic:
        assert msgs[1] == {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]}
        assert msgs[2] == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"temp":18}'}]}
    else:
        assert msgs[1]["tool_calls"] == [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]
        assert msgs[2] == {"role": "tool", "tool_call_id": "call_1", "content": '{"temp":18}'}


@pytest.mark.parametrize("prefix", list(PROVIDERS))
def test_generate_content_stream(gateway, prefix):
    path, anthropic = PROVIDERS[prefix]
    client = gem(gateway, prefix)
    chunks = list(client.models.generate_content_stream(model="m1", contents="hi"))
    assert "".join(c.text or "" for c in chunks).strip() == "hello from m1"
    assert len(chunks) > 2
    last = chunks[-1]
    assert last.candidates[0].finish_reason == gtypes.FinishReason.STOP
    assert (last.usage_metadata.prompt_token_count, last.usage_metadata.candidates_token_count) == (11, 7)
    assert all(c.usage_metadata is None for c in chunks[:-1])
    seen = gateway.last()
    assert seen["path"] == path and seen["body"]["stream"] is True
    if not anthropic:
        assert seen["body"]["stream_options"] == {"include_usage": True}

    # Function calls arrive whole, in one chunk, though the provider streams the arguments.
    config = gtypes.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=NO_AFC)
    chunks = list(client.models.generate_content_stream(model="m-tools", contents="Weather in Paris?", config=config))
    calls = [fc for c in chunks for fc in (c.function_calls or [])]
    assert [(fc.name, fc.args) for fc in calls] == [("get_weather", {"city": "Paris"})]
    assert chunks[-1].candidates[0].finish_reason == gtypes.FinishReason.STOP
    assert chunks[-1].usage_metadata.total_token_count == 18


@pytest.mark.parametrize("prefix", list(PROVIDERS))
def test_errors_in_google_shape(gateway, prefix):
    client = gem(gateway, prefix)
    with pytest.raises(gerrors.ClientError) as e:
        client.models.generate_content(model="m-429", contents="hi")
    assert e.value.code == 429 and e.value.status == "RESOURCE_EXHAUSTED"
    with pytest.raises(gerrors.ServerError) as e:
        client.models.generate_content(model="m-503", contents="hi")
    assert e.value.code == 503 and e.value.status == "UNAVAILABLE"
    # What cannot be translated is refused before any upstream call.
    with pytest.raises(gerrors.ClientError) as e:
        client.models.generate_content(model="m1", contents="hi", config=gtypes.GenerateContentConfig(candidate_count=2))
    assert e.value.code == 400 and e.value.status == "INVALID_ARGUMENT" and "candidateCount" in e.value.message


def test_other_providers(gateway):
    # Bedrock Converse, Azure OpenAI and Claude on Vertex AI, streaming and not.
    for prefix, model, path in [
        ("/bedrock", "anthropic.claude-3-haiku", "/model/anthropic.claude-3-haiku/converse"),
        ("/azure", "gpt-4o", "/openai/deployments/gpt4o-dep/chat/completions"),
        ("/vclaude", "claude-vertex", "/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/claude-vertex:rawPredict"),
    ]:
        client = gem(gateway, prefix)
        r = client.models.generate_content(model=model, contents="hi")
        assert r.text.strip().startswith("hello from"), prefix
        assert r.usage_metadata.prompt_token_count > 0
        assert gateway.last()["path"].startswith(path), gateway.last()["path"]
        text = "".join(c.text or "" for c in client.models.generate_content_stream(model=model, contents="hi"))
        assert text.strip().startswith("hello from"), prefix
    client = gem(gateway, "/bedrock")
    r = client.models.generate_content(model="m-tools", contents="weather?", config=gtypes.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=NO_AFC))
    assert [(fc.name, fc.args) for fc in r.function_calls] == [("get_weather", {"city": "Paris"})]


def test_json_mode(gateway):
    class City(pydantic.BaseModel):
        name: str
        temp: float | None = None

    client = gem(gateway, "/openai")
    config = gtypes.GenerateContentConfig(response_mime_type="application/json", response_schema=list[City])
    client.models.generate_content(model="m1", contents="cities?", config=config)
    fmt = gateway.last()["body"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "response"
    # (The SDK titles a list's schema "Placeholder".)
    assert fmt["json_schema"]["schema"] == {
        "type": "array",
        "title": "Placeholder",
        "items": {"type": "object", "title": "City", "required": ["name"], "properties": {
            "name": {"type": "string", "title": "Name"},
            "temp": {"type": ["number", "null"], "title": "Temp"},
        }},
    }
    client.models.generate_content(model="m1", contents="cities?", config=gtypes.GenerateContentConfig(response_mime_type="application/json"))
    assert gateway.last()["body"]["response_format"] == {"type": "json_object"}
