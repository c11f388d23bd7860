// The official `openai` npm client against pensieve's OpenAI-compatible routes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { STORY, parseSSE, post, readJSON, startServer, withLog } from './server.mjs';

let srv;
let client;
const log = (fn) => withLog(() => srv, fn);

before(async () => {
  srv = await startServer();
  client = new OpenAI({ baseURL: `${srv.baseURL}/v1`, apiKey: 'x', maxRetries: 0, timeout: 30_000 });
});
after(async () => { await srv?.stop(); });

const MODEL = 'gpt-4o-mini';
const params = (extra = {}) => ({
  model: MODEL,
  max_tokens: 40,
  temperature: 0,
  messages: [{ role: 'user', content: STORY }],
  ...extra,
});

test('chat.completions.create non-streaming', log(async () => {
  const { data: c, response } = await client.chat.completions.create(params()).withResponse();
  const ctx = JSON.stringify(c);
  assert.equal(c.object, 'chat.completion', ctx);
  assert.equal(typeof c.id, 'string', ctx);
  assert.equal(c.model, MODEL, ctx);
  assert.ok(Number.isInteger(c.created), ctx);
  assert.equal(c.choices.length, 1, ctx);
  const ch = c.choices[0];
  assert.equal(ch.index, 0, ctx);
  assert.equal(ch.message.role, 'assistant', ctx);
  assert.equal(typeof ch.message.content, 'string', ctx);
  assert.ok(ch.message.content.length > 0, ctx);
  assert.ok(['stop', 'length'].includes(ch.finish_reason), ctx);
  assert.ok(c.usage.prompt_tokens > 0, ctx);
  assert.ok(c.usage.completion_tokens > 0 && c.usage.completion_tokens <= 40, ctx);
  assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens, ctx);
  assert.match(response.headers.get('request-id') ?? '', /^req_\w+$/);
}));

test('finish_reason length at max_tokens; system message accepted', log(async () => {
  const c = await client.chat.completions.create(params({
    max_tokens: 4,
    messages: [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: STORY }],
  }));
  assert.equal(c.choices[0].finish_reason, 'length', JSON.stringify(c));
  assert.equal(c.usage.completion_tokens, 4, JSON.stringify(c));
}));

test('greedy text agrees with /v1/messages for the same prompt', log(async () => {
  const c = await client.chat.completions.create(params());
  const res = await post(srv.baseURL, '/v1/messages', { ...params(), model: 'claude-x' });
  const m = await readJSON(res);
  assert.equal(res.status, 200, JSON.stringify(m));
  assert.equal(c.choices[0].message.content, m.content.map((b) => b.text).join(''));
  assert.equal(c.usage.prompt_tokens, m.usage.input_tokens);
  assert.equal(c.usage.completion_tokens, m.usage.output_tokens);
}));

test('streaming deltas concatenate to the non-streaming text; include_usage', log(async () => {
  const plain = await client.chat.completions.create(params());
  const stream = await client.chat.completions.create({ ...params(), stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk', JSON.stringify(chunk));
    if (chunk.usage) usage = chunk.usage;
    for (const ch of chunk.choices ?? []) {
      if (ch.delta?.content) text += ch.delta.content;
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  assert.ok(chunks >= 3, `only ${chunks} chunks`);
  assert.equal(text, plain.choices[0].message.content);
  assert.equal(finish, plain.choices[0].finish_reason);
  assert.ok(usage, 'no usage chunk with include_usage');
  assert.equal(usage.completion_tokens, plain.usage.completion_tokens);
  assert.equal(usage.prompt_tokens, plain.usage.prompt_tokens);
}));

test('raw streaming: data: chunks then data: [DONE]; usage chunk last with empty choices', log(async () => {
  const res = await fetch(`${srv.baseURL}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer x' },
    body: JSON.stringify({ ...params({ max_tokens: 10 }), stream: true, stream_options: { include_usage: true } }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const raw = await res.text();
  const frames = parseSSE(raw);
  assert.ok(frames.length >= 3, raw);
  assert.equal(frames.at(-1).dataText, '[DONE]', `last frame: ${JSON.stringify(frames.at(-1)?.raw)}`);
  for (const f of frames.slice(0, -1)) assert.ok(f.data, `non-JSON chunk ${JSON.stringify(f.raw)}`);
  const last = frames.at(-2).data;
  assert.ok(last.usage && last.usage.completion_tokens === 10, JSON.stringify(last));
  assert.deepEqual(last.choices, []);
  assert.ok(frames.slice(0, -2).some((f) => f.data.choices?.[0]?.finish_reason === 'length'), raw);
  // without stream_options
  const res2 = await fetch(`${srv.baseURL}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...params({ max_tokens: 5 }), stream: true }),
  });
  const frames2 = parseSSE(await res2.text());
  assert.equal(frames2.at(-1).dataText, '[DONE]');
  assert.ok(frames2.slice(0, -1).every((f) => f.data?.object === 'chat.completion.chunk'));
}));

test('models.list() in OpenAI shape', log(async () => {
  const models = [];
  for await (const m of client.models.list()) models.push(m);
  assert.ok(models.length >= 1, 'no models');
  for (const m of models) {
    assert.equal(m.object, 'model', JSON.stringify(m));
    assert.equal(typeof m.id, 'string');
    assert.ok(Number.isInteger(m.created), JSON.stringify(m));
    assert.equal(typeof m.owned_by, 'string', JSON.stringify(m));
  }
  const res = await fetch(`${srv.baseURL}/v1/models`, { headers: { authorization: 'Bearer x' } });
  const body = await readJSON(res);
  assert.equal(body.object, 'list', JSON.stringify(body));
}));

test('OpenAI errors: bad request gets a 4xx APIError', log(async () => {
  let err;
  try {
    await client.chat.completions.create({ model: MODEL, messages: 'nope' });
  } catch (e) { err = e; }
  assert.ok(err instanceof OpenAI.APIError, `expected APIError, got ${err}`);
  assert.equal(err.status, 400);
}));
