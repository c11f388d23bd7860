// Error statuses and bodies: 400, 401, 404, 413, 429, checked with raw fetch (exact status and
// body) and with the SDK (error classes). SDK clients use maxRetries: 0.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import {
  MODEL_NAME, STORY, expectError, poll, post, readJSON, sseFrames, startServer, withLog,
} from './server.mjs';

const ok = (extra = {}) => ({
  model: MODEL_NAME,
  max_tokens: 3,
  temperature: 0,
  messages: [{ role: 'user', content: STORY }],
  ...extra,
});

const sdk = (srv, opts = {}) => new Anthropic({
  baseURL: srv.baseURL, apiKey: 'dummy', maxRetries: 0, timeout: 30_000, ...opts,
});

async function expectSdkError(promise, Class, status) {
  let err;
  try {
    const v = await promise;
    assert.fail(`expected ${Class.name}, got a result: ${JSON.stringify(v).slice(0, 300)}`);
  } catch (e) {
    err = e;
  }
  if (err instanceof assert.AssertionError) throw err;
  assert.ok(err instanceof Class, `expected ${Class.name}, got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.status, status);
  assert.match(err.requestID ?? '', /^req_\w+$/, 'SDK error has no requestID');
  return err;
}

describe('400 invalid_request_error and 404 not_found_error', () => {
  let srv;
  const log = (fn) => withLog(() => srv, fn);
  before(async () => { srv = await startServer(); });
  after(async () => { await srv?.stop(); });

  test('malformed JSON', log(async () => {
    const res = await post(srv.baseURL, '/v1/messages', '{"model": "x", "max_tokens": 5, "messages": [');
    await expectError(res, 400, 'invalid_request_error', assert);
    const res2 = await post(srv.baseURL, '/v1/messages', 'not json at all');
    await expectError(res2, 400, 'invalid_request_error', assert);
  }));

  test('invalid UTF-8 in the body', log(async () => {
    const bytes = Buffer.concat([
      Buffer.from(`{"model":"${MODEL_NAME}","max_tokens":5,"messages":[{"role":"user","content":"bad `),
      Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
      Buffer.from('"}]}'),
    ]);
    const res = await post(srv.baseURL, '/v1/messages', new Uint8Array(bytes));
    await expectError(res, 400, 'invalid_request_error', assert);
  }));

  test('missing max_tokens / missing messages / bad field types', log(async () => {
    const { max_tokens, ...noMax } = ok();
    await expectError(await post(srv.baseURL, '/v1/messages', noMax), 400, 'invalid_request_error', assert);
    const { messages, ...noMessages } = ok();
    await expectError(await post(srv.baseURL, '/v1/messages', noMessages), 400, 'invalid_request_error', assert);
    await expectError(await post(srv.baseURL, '/v1/messages', ok({ max_tokens: 'ten' })), 400, 'invalid_request_error', assert);
    await expectError(await post(srv.baseURL, '/v1/messages', ok({ messages: 'hello' })), 400, 'invalid_request_error', assert);
    await expectError(await post(srv.baseURL, '/v1/messages', ok({ messages: [{ role: 'wizard', content: 'hi' }] })), 400, 'invalid_request_error', assert);
    // JSON that is not an object
    await expectError(await post(srv.baseURL, '/v1/messages', '[1,2,3]'), 400, 'invalid_request_error', assert);
  }));

  test('SDK raises BadRequestError', log(async () => {
    const { max_tokens, ...noMax } = ok();
    const err = await expectSdkError(sdk(srv).messages.create(noMax), Anthropic.BadRequestError, 400);
    assert.equal(err.error?.error?.type, 'invalid_request_error', JSON.stringify(err.error));
  }));

  test('context overflow: "prompt is too long: N tokens > M maximum"', log(async () => {
    const words = [];
    const base = 'the little cat sat on the warm mat and looked at the big tree'.split(' ');
    while (words.length < 2000) words.push(...base);
    const long = { model: MODEL_NAME, max_tokens: 10, messages: [{ role: 'user', content: words.join(' ') }] };
    const res = await post(srv.baseURL, '/v1/messages', long);
    const body = await expectError(res, 400, 'invalid_request_error', assert);
    const m = /^prompt is too long: (\d+) tokens > (\d+) maximum$/.exec(body.error.message);
    assert.ok(m, `wrong wording: ${JSON.stringify(body.error.message)}`);
    const [n, max] = [Number(m[1]), Number(m[2])];
    assert.ok(n > max, body.error.message);
    assert.ok(max <= 512, `maximum ${max} is above the model's context of 512`);
    // N is the prompt's token count, as count_tokens reports it
    const counted = await readJSON(await post(srv.baseURL, '/v1/messages/count_tokens', { model: MODEL_NAME, messages: long.messages }));
    assert.equal(n, counted.input_tokens, `count_tokens says ${JSON.stringify(counted)}`);
    // the same with stream: true is still a plain 400 before any SSE
    const res2 = await post(srv.baseURL, '/v1/messages', { ...long, stream: true });
    const body2 = await expectError(res2, 400, 'invalid_request_error', assert);
    assert.equal(body2.error.message, body.error.message);
    // and through the SDK
    const err = await expectSdkError(sdk(srv).messages.create(long), Anthropic.BadRequestError, 400);
    assert.match(err.message, /prompt is too long: \d+ tokens > \d+ maximum/);
  }));

  test('a huge max_tokens is clamped, not rejected', log(async () => {
    const res = await post(srv.baseURL, '/v1/messages', ok({ max_tokens: 64000 }));
    const body = await readJSON(res);
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.ok(['end_turn', 'max_tokens', 'model_context_window_exceeded'].includes(body.stop_reason), JSON.stringify(body));
  }));

  test('unknown routes get 404 not_found_error', log(async () => {
    await expectError(await fetch(`${srv.baseURL}/v1/nope`), 404, 'not_found_error', assert);
    await expectError(await post(srv.baseURL, '/v2/messages', ok()), 404, 'not_found_error', assert);
    await expectError(await fetch(`${srv.baseURL}/v1/messages/batches/x`), 404, 'not_found_error', assert);
    await expectSdkError(sdk(srv).post('/v1/definitely-not-a-route', { body: {} }), Anthropic.NotFoundError, 404);
  }));
});

describe('401 authentication_error (--api-key)', () => {
  let srv;
  const KEY = 'sk-e2e-secret-key-123';
  const log = (fn) => withLog(() => srv, fn);
  before(async () => { srv = await startServer(['--api-key', KEY]); });
  after(async () => { await srv?.stop(); });

  test('missing or wrong key is rejected', log(async () => {
    await expectError(await post(srv.baseURL, '/v1/messages', ok()), 401, 'authentication_error', assert);
    await expectError(await post(srv.baseURL, '/v1/messages', ok(), { 'x-api-key': 'wrong' }), 401, 'authentication_error', assert);
    await expectError(await post(srv.baseURL, '/v1/messages', ok(), { authorization: 'Bearer wrong' }), 401, 'authentication_error', assert);
    await expectError(await post(srv.baseURL, '/v1/messages', ok(), { 'x-api-key': KEY.slice(0, -1) }), 401, 'authentication_error', assert);
    await expectError(await post(srv.baseURL, '/v1/messages/count_tokens', { model: MODEL_NAME, messages: ok().messages }), 401, 'authentication_error', assert);
    await expectError(await fetch(`${srv.baseURL}/v1/models`, { headers: { 'anthropic-version': '2023-06-01' } }), 401, 'authentication_error', assert);
  }));

  test('x-api-key and Authorization: Bearer both work', log(async () => {
    for (const headers of [{ 'x-api-key': KEY }, { authorization: `Bearer ${KEY}` }]) {
      const res = await post(srv.baseURL, '/v1/messages', ok(), headers);
      const body = await readJSON(res);
      assert.equal(res.status, 200, `${JSON.stringify(headers)}: ${JSON.stringify(body)}`);
      assert.equal(body.type, 'message');
    }
  }));

  test('GET /health needs no key', log(async () => {
    const res = await fetch(`${srv.baseURL}/health`);
    const body = await readJSON(res);
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.ok('status' in body);
  }));

  test('SDK: AuthenticationError with a wrong key; apiKey and authToken work', log(async () => {
    const err = await expectSdkError(sdk(srv, { apiKey: 'nope' }).messages.create(ok()), Anthropic.AuthenticationError, 401);
    assert.equal(err.error?.error?.type, 'authentication_error', JSON.stringify(err.error));
    const a = await sdk(srv, { apiKey: KEY }).messages.create(ok());
    assert.equal(a.type, 'message');
    const b = await new Anthropic({ baseURL: srv.baseURL, authToken: KEY, maxRetries: 0 }).messages.create(ok());
    assert.equal(b.type, 'message');
  }));
});

describe('413 request_too_large (--max-body-bytes 2000)', () => {
  let srv;
  const log = (fn) => withLog(() => srv, fn);
  before(async () => { srv = await startServer(['--max-body-bytes', '2000']); });
  after(async () => { await srv?.stop(); });

  test('a body under the limit is served, one over it gets 413', log(async () => {
    const small = ok();
    assert.ok(JSON.stringify(small).length < 2000);
    const res = await post(srv.baseURL, '/v1/messages', small);
    assert.equal(res.status, 200, await res.text());
    const big = ok({ messages: [{ role: 'user', content: 'Once upon a time '.repeat(400) }] });
    assert.ok(JSON.stringify(big).length > 6000);
    await expectError(await post(srv.baseURL, '/v1/messages', big), 413, 'request_too_large', assert);
    const err = await expectSdkError(sdk(srv).messages.create(big), Anthropic.ContentTooLargeError, 413);
    assert.equal(err.error?.error?.type, 'request_too_large', JSON.stringify(err.error));
    // the server still works afterwards
    const again = await post(srv.baseURL, '/v1/messages', small);
    assert.equal(again.status, 200, await again.text());
  }));
});

describe('429 rate_limit_error (--max-queue 0 --parallel 1)', () => {
  let srv;
  const log = (fn) => withLog(() => srv, fn);
  before(async () => { srv = await startServer(['--max-queue', '0', '--parallel', '1', '--debug-token-delay-ms', '50']); });
  after(async () => { await srv?.stop(); });

  test('a second request while one generates gets 429 with retry-after', log(async () => {
    const ac = new AbortController();
    const first = await post(srv.baseURL, '/v1/messages', ok({ max_tokens: 300, stream: true }), {}, { signal: ac.signal });
    assert.equal(first.status, 200);
    try {
      let sawDelta = false;
      for await (const f of sseFrames(first)) {
        if (f.event === 'content_block_delta') { sawDelta = true; break; }
      }
      assert.ok(sawDelta, 'first stream ended without a delta');

      const res = await post(srv.baseURL, '/v1/messages', ok());
      const retryAfter = res.headers.get('retry-after');
      await expectError(res, 429, 'rate_limit_error', assert);
      assert.match(retryAfter ?? '', /^\d+$/, `retry-after: ${retryAfter}`);

      const err = await expectSdkError(sdk(srv).messages.create(ok()), Anthropic.RateLimitError, 429);
      assert.equal(err.error?.error?.type, 'rate_limit_error', JSON.stringify(err.error));
      assert.match(err.headers?.get('retry-after') ?? '', /^\d+$/);

      // /health is not queued
      const health = await fetch(`${srv.baseURL}/health`);
      assert.equal(health.status, 200);
      await health.text();
    } finally {
      ac.abort();
    }
    // once the first request is gone the server accepts work again
    const status = await poll(async () => {
      const r = await post(srv.baseURL, '/v1/messages', ok({ max_tokens: 1 }));
      await r.text();
      return r.status === 200 ? 200 : null;
    }, 3000, 100);
    assert.equal(status, 200, 'server still refuses work 3 s after the first client disconnected');
  }));
});
