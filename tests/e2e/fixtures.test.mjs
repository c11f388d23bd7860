// Real Claude Code 2.1.197 requests (shared/fixtures/claude-code-2.1.197) replayed verbatim:
// the server must parse and render all of it. With the 512-token test model the full requests
// overflow the context, so /v1/messages answers with Claude Code's "prompt is too long" 400.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import {
  FIXTURES, checkMessageStream, expectError, parseSSE, readJSON, startServer, withLog,
} from './server.mjs';

let srv;
const log = (fn) => withLog(() => srv, fn);

before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort();
const DROP = new Set(['host', 'content-length', 'connection', 'accept-encoding']);

function load(file) {
  const fx = JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8'));
  const headers = {};
  for (const [k, v] of Object.entries(fx.headers)) if (!DROP.has(k.toLowerCase())) headers[k] = v;
  return { ...fx, headers };
}

function send(fx, url, body) {
  return fetch(srv.baseURL + url, { method: fx.method, headers: fx.headers, body: JSON.stringify(body) });
}

test('fixtures are present', () => {
  assert.ok(files.length >= 3, `expected the Claude Code fixtures in ${FIXTURES}, found ${files.join(', ')}`);
});

for (const file of files) {
  test(`${file}: count_tokens, then the messages request overflows the 512 context`, log(async () => {
    const fx = load(file);
    assert.equal(fx.method, 'POST');
    assert.match(fx.url, /^\/v1\/messages\?beta=true$/);
    const countURL = fx.url.replace('/v1/messages', '/v1/messages/count_tokens');
    const { max_tokens: _m, stream: _s, ...countBody } = fx.body;
    const cres = await send(fx, countURL, countBody);
    const counted = await readJSON(cres);
    assert.equal(cres.status, 200, JSON.stringify(counted));
    assert.ok(Number.isInteger(counted.input_tokens) && counted.input_tokens > 1000, JSON.stringify(counted));

    const res = await send(fx, fx.url, fx.body);
    const body = await expectError(res, 400, 'invalid_request_error', assert);
    const m = /^prompt is too long: (\d+) tokens > (\d+) maximum$/.exec(body.error.message);
    assert.ok(m, `wrong wording: ${JSON.stringify(body.error.message)}`);
    assert.ok(Number(m[1]) > Number(m[2]));
    assert.equal(Number(m[1]), counted.input_tokens, 'overflow count differs from count_tokens');
  }));
}

test('HEAD / (sent by Claude Code first) gets 200 or 404', log(async () => {
  const res = await fetch(`${srv.baseURL}/`, { method: 'HEAD' });
  assert.ok([200, 404].includes(res.status), `HEAD / -> ${res.status}`);
  assert.match(res.headers.get('request-id') ?? '', /^req_\w+$/);
}));

test('tool round trip, trimmed to fit the context: a well-formed stream', log(async () => {
  const fx = load(files.find((f) => f.includes('tool-round-trip-2')) ?? files.at(-1));
  const cut = (s) => (s.length > 120 ? s.slice(0, 120) : s);
  const messages = fx.body.messages.map((msg) => ({
    ...msg,
    content: typeof msg.content === 'string' ? cut(msg.content)
      : msg.content.map((b) => (b.type === 'text' ? { ...b, text: cut(b.text) } : b)),
  }));
  const body = { ...fx.body, system: fx.body.system.slice(0, 1), messages };
  delete body.tools;
  assert.ok(messages.some((msg) => msg.role === 'system'), 'fixture lost its mid-conversation system message');
  assert.ok(messages.some((msg) => Array.isArray(msg.content) && msg.content.some((b) => b.type === 'tool_result')));
  const { max_tokens: _m, stream: _s, ...countBody } = body;
  const counted = await readJSON(await send(fx, fx.url.replace('/v1/messages', '/v1/messages/count_tokens'), countBody));
  assert.ok(counted.input_tokens > 0 && counted.input_tokens < 400, `trimmed prompt: ${JSON.stringify(counted)}`);

  const res = await send(fx, fx.url, body); // stream: true, max_tokens: 64000 (clamped)
  const raw = await res.text();
  assert.equal(res.status, 200, raw.slice(0, 500));
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const { start, delta } = checkMessageStream(parseSSE(raw), assert);
  assert.equal(start.model, fx.body.model);
  assert.equal(start.usage.input_tokens, counted.input_tokens);
  assert.ok(['end_turn', 'model_context_window_exceeded'].includes(delta.delta.stop_reason),
    `stop_reason ${delta.delta.stop_reason} (max_tokens 64000 is above the context: never max_tokens)`);
  assert.ok(start.usage.input_tokens + delta.usage.output_tokens <= 512);
}));
