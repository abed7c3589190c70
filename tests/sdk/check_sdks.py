"""The unmodified openai and anthropic SDKs against a running tollgate.

Run by tests/sdk.rs with TOLLGATE_URL and TOLLGATE_KEY set; exits non-zero on the
first mismatch.
"""
import asyncio
import os

import anthropic
import openai

BASE = os.environ["TOLLGATE_URL"]
KEY = os.environ["TOLLGATE_KEY"]
oa = openai.OpenAI(base_url=BASE + "/v1", api_key=KEY, max_retries=0)
an = anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0)
msgs = [{"role": "user", "content": "hi"}]

r = oa.chat.completions.create(model="GPT-4-omni", messages=msgs)
assert r.model == "gpt-4o" and r.choices[0].message.content, r
assert r.usage.total_tokens > 0

chunks = list(oa.chat.completions.create(model="gpt-4o", messages=msgs, stream=True))
assert chunks and chunks[-1].choices[0].finish_reason == "stop", chunks[-1]

emb = oa.embeddings.create(model="openai:text-embedding-3-small", input="x")
assert len(emb.data[0].embedding) > 0

assert oa.responses.create(model="gpt-4o", input="hi").output_text
with oa.responses.stream(model="gpt-4o", input="hi") as stream:
    for _ in stream:
        pass
    assert stream.get_final_response().output_text

models = oa.models.list().data
assert len(models) >= 60 and oa.models.retrieve("gpt-4-omni").id == "gpt-4o"

try:
    oa.chat.completions.create(model="gpt-4x", messages=msgs)
    raise SystemExit("unknown model did not raise")
except openai.NotFoundError as e:
    assert e.status_code == 404 and e.code == "model_not_found", e

try:
    openai.OpenAI(base_url=BASE + "/v1", api_key="tg-wrong", max_retries=0).chat.completions.create(
        model="gpt-4o", messages=msgs
    )
    raise SystemExit("bad key did not raise")
except openai.AuthenticationError as e:
    assert e.status_code == 401, e

try:
    oa.chat.completions.create(model="gpt-4o", messages=msgs, extra_body={"model": 3})
except openai.BadRequestError as e:
    assert e.status_code == 400, e


async def run_async():
    client = openai.AsyncOpenAI(base_url=BASE + "/v1", api_key=KEY, max_retries=0)
    r = await client.chat.completions.create(model="gpt-4o", messages=msgs)
    assert r.choices[0].message.content
    stream = await client.chat.completions.create(model="gpt-4o", messages=msgs, stream=True)
    assert len([c async for c in stream]) >= 2
    aan = anthropic.AsyncAnthropic(base_url=BASE, api_key=KEY, max_retries=0)
    m = await aan.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=msgs)
    assert m.content[0].text


asyncio.run(run_async())

m = an.messages.create(model="claude-opus-4-1", max_tokens=10, messages=msgs)
assert m.model == "claude-opus-4-1" and m.content[0].text and m.usage.output_tokens > 0
with an.messages.stream(model="claude-haiku-4-5", max_tokens=10, messages=msgs) as stream:
    assert stream.get_final_text()
try:
    an.messages.create(model="no-such-model", max_tokens=1, messages=msgs)
    raise SystemExit("unknown model did not raise")
except anthropic.NotFoundError as e:
    assert e.status_code == 404, e

print("sdk checks passed")
