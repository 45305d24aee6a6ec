"""Policies end to end with the official openai SDK: API keys, JWT (remote JWKS) with CEL
rules, basic auth, local request and token limits, CORS, prompt guards, and global limits in
a real Redis shared by two proxies."""

import concurrent.futures
import json
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx
import jwt
import openai
import pytest

from conftest import start_redis
from credentials import ISSUER, JWT_SECRET

MSG = [{"role": "user", "content": "hello"}]


def client(env, prefix, key="unused", proxy=0, **kw):
    return openai.OpenAI(base_url=env.url(prefix, proxy) + "/v1", api_key=key, max_retries=0, **kw)


def chat(env, prefix, key="unused", proxy=0, headers=None, content="hello"):
    return client(env, prefix, key, proxy).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": content}],
        extra_headers=headers or {},
    )


def token(groups, exp_in=600, aud="agora", secret=JWT_SECRET):
    claims = {"iss": ISSUER, "aud": aud, "sub": "alice", "groups": groups, "exp": int(time.time()) + exp_in}
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": "test-1"})


def test_api_keys_with_metadata_rule(env):
    with pytest.raises(openai.AuthenticationError) as e:
        chat(env, "/keyed", key="sk-nobody-0123456789")
    assert e.value.status_code == 401
    assert "invalid API key" in e.value.message
    assert e.value.response.headers["www-authenticate"].startswith("Bearer")
    r = chat(env, "/keyed", key="sk-alice-0123456789")
    assert r.choices[0].message.content
    # The upstream sees the provider key, never the client's.
    assert env.recorded()[-1]["headers"]["authorization"] == "Bearer sk-upstream-openai"
    with pytest.raises(openai.PermissionDeniedError) as e:
        chat(env, "/keyed", key="sk-bob-0123456789")
    assert e.value.status_code == 403


def test_jwt_from_remote_jwks_and_claims_rule(env):
    deadline = time.time() + 10
    while True:
        try:
            chat(env, "/jwt", key=token(["ml", "eng"]))
            break
        except openai.AuthenticationError as e:
            # The proxy fetches the JWKS in the background right after start.
            if time.time() > deadline or "not loaded" not in e.message:
                raise
            time.sleep(0.2)
    with pytest.raises(openai.PermissionDeniedError):
        chat(env, "/jwt", key=token(["web"]))
    for bad, why in [
        (token(["ml"], exp_in=-3600), "token expired"),
        (token(["ml"], aud="other"), "wrong audience"),
        (token(["ml"], secret=b"x" * 40), "invalid signature"),
    ]:
        with pytest.raises(openai.AuthenticationError) as e:
            chat(env, "/jwt", key=bad)
        assert why in e.value.message, e.value.message


def test_basic_auth(env):
    body = {"model": "m", "messages": MSG}
    r = httpx.post(env.url("/basic/v1/chat/completions"), json=body, auth=("carol", "correct horse"))
    assert r.status_code == 200, r.text
    r = httpx.post(env.url("/basic/v1/chat/completions"), json=body, auth=("carol", "wrong"))
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith('Basic realm="llm"')
    assert r.json()["error"]["message"]


def test_local_request_limit(env):
    for _ in range(3):
        chat(env, "/limited")
    with pytest.raises(openai.RateLimitError) as e:
        chat(env, "/limited")
    h = e.value.response.headers
    assert e.value.status_code == 429
    assert int(h["retry-after"]) >= 1
    assert h["x-ratelimit-limit"] == "3" and h["x-ratelimit-remaining"] == "0"
    # OpenAI's error shape, so the SDK could parse it.
    assert e.value.body["type"] in ("rate_limit_exceeded", "rate_limit_error", "requests")
    # The other proxy has its own local buckets.
    chat(env, "/limited", proxy=1)


def test_local_token_limit_settles_real_usage(env):
    # The bucket holds 60. Each call is admitted with its estimate (~19 tokens for this body)
    # and settled to the 18 the mock reports: 60 -> 42 -> 24 -> 6, and the fourth call's
    # estimate no longer fits.
    ok = 0
    with pytest.raises(openai.RateLimitError):
        for _ in range(10):
            chat(env, "/tokens")
            ok += 1
    assert ok == 3, ok


def test_cors_preflight_and_response_headers(env):
    pre = {"origin": "https://chat.example.com", "access-control-request-method": "POST",
           "access-control-request-headers": "content-type"}
    r = httpx.options(env.url("/cors/v1/chat/completions"), headers=pre)
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "https://chat.example.com"
    assert r.headers["access-control-allow-methods"] == "POST, OPTIONS"
    assert r.headers["access-control-max-age"] == "600"
    r = httpx.options(env.url("/cors/v1/chat/completions"), headers={**pre, "origin": "https://evil.test"})
    assert r.status_code == 204 and "access-control-allow-origin" not in r.headers
    r = httpx.post(env.url("/cors/v1/chat/completions"), json={"model": "m", "messages": MSG},
                   headers={"origin": "https://chat.example.com"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://chat.example.com"


def test_prompt_guards(env):
    with pytest.raises(openai.PermissionDeniedError) as e:
        chat(env, "/guarded", content="my ssn is 123-45-6789")
    assert "prompt contains PII" in e.value.message
    with pytest.raises(openai.PermissionDeniedError):
        chat(env, "/guarded", content="card 4111 1111 1111 1111 please")
    chat(env, "/guarded", content="mail me at jane@corp.example.com")
    sent = env.recorded()[-1]["body"]["messages"][0]["content"]
    assert sent == "mail me at <EMAIL>", sent


def test_header_modifiers_as_a_policy(env):
    r = httpx.post(env.url("/headers/v1/chat/completions"), json={"model": "m", "messages": MSG},
                   headers={"x-internal": "secret"})
    assert r.status_code == 200 and r.headers["x-served-by"] == "agora"
    seen = env.recorded()[-1]["headers"]
    assert seen["x-policy"] == "applied" and "x-internal" not in seen


def test_authorization_by_the_llm_request(env):
    client(env, "/models-rule").chat.completions.create(model="gpt-4o-mini", messages=MSG)
    with pytest.raises(openai.PermissionDeniedError):
        client(env, "/models-rule").chat.completions.create(model="claude-haiku-4-5", messages=MSG)
    with pytest.raises(openai.PermissionDeniedError):
        chat(env, "/models-rule", content="x" * 5000)


def test_example_policy_from_shared_manifests(env):
    with pytest.raises(openai.PermissionDeniedError):
        chat(env, "/example")
    r = chat(env, "/example", headers={"x-team": "ml-platform"})
    assert r.choices[0].message.content


def test_global_limit_shared_by_two_proxies(env):
    def one(i):
        try:
            chat(env, "/global", proxy=i % 2)
            return 200
        except openai.RateLimitError:
            return 429

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, range(30)))
    assert codes.count(200) == 10, codes
    assert codes.count(429) == 20


def test_global_token_limit_per_descriptor(env):
    # 90 tokens per user per hour, 18 per call, shared by both proxies.
    def calls(user):
        n = 0
        for i in range(10):
            try:
                chat(env, "/gtokens", proxy=i % 2, headers={"x-user": user})
                n += 1
            except openai.RateLimitError:
                break
        return n

    assert calls("u1") == 5
    assert calls("u2") == 5


def test_external_authorization(env):
    with pytest.raises(openai.PermissionDeniedError):
        chat(env, "/extauth")
    chat(env, "/extauth", headers={"x-allow": "yes"})
    # The service's answer named the user; the upstream got it.
    assert env.recorded()[-1]["headers"]["x-user-id"] == "user-42"
    with pytest.raises(openai.APIStatusError) as e:
        chat(env, "/xdown")
    assert e.value.status_code == 503
    chat(env, "/xopen")


def test_external_authorization_over_grpc(env):
    """Envoy's ext_authz v3 API: the service sees the request's method, path, host, headers
    and source; its denied response (status and body) is the client's answer; its OK answer's
    headers reach the upstream (only those the policy lists)."""
    with pytest.raises(openai.AuthenticationError) as e:
        chat(env, "/xgrpc", headers={"x-badge": "none"})
    assert "badge required" in str(e.value)
    check = env.grpc_authz.checks[-1]
    assert check["method"] == "POST" and check["path"].startswith("/xgrpc")
    assert check["headers"]["x-badge"] == "none"
    assert check["host"] == "127.0.0.1"
    assert check["source"] == "127.0.0.1" and check["source_port"] > 0
    chat(env, "/xgrpc", headers={"x-allow": "yes"})
    upstream = env.recorded()[-1]["headers"]
    assert upstream["x-user-id"] == "grpc-user-7"
    assert "x-not-listed" not in upstream
    with pytest.raises(openai.APIStatusError) as e:
        chat(env, "/xgdown")
    assert e.value.status_code == 503


def test_response_guards_json_and_stream(env):
    c = client(env, "/answers")
    r = c.chat.completions.create(model="jane@corp.example.com", messages=MSG)
    assert r.choices[0].message.content == "hello from <EMAIL>"
    chunks = c.chat.completions.create(model="jane@corp.example.com", messages=MSG, stream=True)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text.strip() == "hello from <EMAIL>", text
    r = c.chat.completions.create(model="secret-model", messages=MSG)
    assert r.choices[0].message.content == "answer withheld"
    assert r.choices[0].finish_reason == "content_filter"
    with pytest.raises(openai.APIError) as e:
        for _ in c.chat.completions.create(model="secret-model", messages=MSG, stream=True):
            pass
    assert "answer withheld" in str(e.value)
    m = env.metrics(0)
    assert 'agora_prompt_guard_total{direction="response",gateway="test/policies",outcome="masked",route="test/policies/answers"}' in m


def test_prompt_guard_webhook(env):
    chat(env, "/webhook", content="tell me a joke")
    with pytest.raises(openai.PermissionDeniedError) as e:
        chat(env, "/webhook", content="let us discuss forbidden-topic")
    assert "topic not allowed here" in e.value.message


def spend_until_refused(env, prefix, keys):
    calls = 0
    for i in range(10):
        try:
            chat(env, prefix, key=keys[i % len(keys)], proxy=i % 2)
            calls += 1
            time.sleep(0.1)  # spend is added once the response is over
        except openai.RateLimitError as e:
            assert "budget" in e.message, e.message
            return calls
    return calls


def test_budget_per_key_in_tokens_across_proxies(env):
    # 18 tokens per call, 50 per key per hour, counted in Redis for both proxies.
    assert spend_until_refused(env, "/btokens", ["sk-alice-0123456789"]) == 3
    # Bob has his own budget.
    assert spend_until_refused(env, "/btokens", ["sk-bob-0123456789"]) == 3
    budgets = json.loads(urllib.request.urlopen(f"http://{env.admins[0]}/budgets").read())["budgets"]
    alice = [b for b in budgets if b["subject"] == "alice" and "budget-tokens" in b["policy"]]
    assert alice and alice[0]["tokens"] >= 54 and alice[0]["max_tokens"] == 50


def test_budget_per_group_in_dollars(env):
    # $100 per million tokens: 18 tokens cost $0.0018; the group may spend $0.005.
    assert spend_until_refused(env, "/bcost", ["sk-alice-0123456789", "sk-bob-0123456789"]) == 3
    m = env.metrics(0) + env.metrics(1)
    assert 'agora_budget_spend_usd{policy="policy/budget-cost/0",subject="ml"}' in m


def test_redis_down_fail_closed_and_open(env):
    chat(env, "/gopen")
    env.redis_proc.terminate()
    env.redis_proc.wait(10)
    with pytest.raises(openai.APIStatusError) as e:
        chat(env, "/global", proxy=1)
    assert e.value.status_code == 503
    r = chat(env, "/gopen", proxy=1)
    assert r.choices[0].message.content
    # Redis back (empty): the limiter reconnects on its own and admits again.
    env.redis_proc = start_redis(env.redis_port, Path(tempfile.mkdtemp(prefix="agora-redis-")))
    deadline = time.time() + 10
    while True:
        try:
            chat(env, "/global", proxy=1)
            break
        except openai.APIStatusError as e:
            assert e.status_code == 503 and time.time() < deadline, e
