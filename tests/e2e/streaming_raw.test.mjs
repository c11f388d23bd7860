// Raw SSE over fetch: exact event order, index discipline, usage, and agreement with the
// non-streaming reply for the same greedy request.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MODEL_NAME, STORY, checkMessageStream, parseSSE, post, readJSON, sseFrames, startServer, withLog,
} from './server.mjs';

let srv;
const log = (fn) => withLog(() => srv, fn);

before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

const body = (extra = {}) => ({
  model: MODEL_NAME,
  max_tokens: 40,
  temperature: 0,
  messages: [{ role: 'user', content: STORY }],
  ...extra,
});

async function nonStreaming(b) {
  const res = await post(srv.baseURL, '/v1/messages', b);
  const msg = await readJSON(res);
  assert.equal(res.status, 200, JSON.stringify(msg));
  return { msg, text: msg.content.filter((c) => c.type === 'text').map((c) => c.text).join('') };
}

async function streaming(b, path = '/v1/messages') {
  const res = await post(srv.baseURL, path, { ...b, stream: true });
  if (res.status !== 200) assert.fail(`status ${res.status}: ${await res.text()}`);
  const raw = await res.text();
  return { res, raw, frames: parseSSE(raw) };
}

test('headers: text/event-stream and request-id', log(async () => {
  const { res, raw } = await streaming(body({ max_tokens: 3 }));
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  assert.match(res.headers.get('request-id') ?? '', /^req_\w+$/);
  assert.equal(res.headers.get('content-encoding'), null);
  assert.ok(raw.endsWith('\n\n'), `stream does not end with a blank line: ${JSON.stringify(raw.slice(-80))}`);
  // every frame is `event: T\ndata: JSON`
  for (const block of raw.split('\n\n').filter((b) => b.trim())) {
    const lines = block.split('\n').filter((l) => !l.startsWith(':'));
    if (lines.length === 0) continue;
    assert.match(lines[0], /^event: [a-z_]+$/, JSON.stringify(block));
    assert.match(lines[1] ?? '', /^data: \{.*\}$/, JSON.stringify(block));
    assert.equal(lines.length, 2, JSON.stringify(block));
  }
}));

test('event grammar, usage, and equality with the non-streaming reply', log(async () => {
  const b = body();
  const plain = await nonStreaming(b);
  const { frames } = await streaming(b);
  const { text, start, delta } = checkMessageStream(frames, assert);
  assert.equal(start.model, MODEL_NAME);
  assert.equal(start.usage.input_tokens, plain.msg.usage.input_tokens);
  assert.equal(start.usage.cache_creation_input_tokens, 0);
  assert.equal(start.usage.cache_read_input_tokens, 0);
  assert.equal(text, plain.text, 'streamed text differs from the non-streaming greedy text');
  assert.ok(delta.usage.output_tokens > 0);
  assert.equal(delta.usage.output_tokens, plain.msg.usage.output_tokens);
  assert.equal(delta.delta.stop_reason, plain.msg.stop_reason);
  assert.equal(delta.delta.stop_sequence, null);
  // a text reply: exactly one text block
  const starts = frames.filter((f) => f.event === 'content_block_start');
  assert.equal(starts.length, 1, 'expected one content block');
  assert.equal(starts[0].data.content_block.type, 'text');
  assert.ok(frames.filter((f) => f.event === 'content_block_delta').length >= 2, 'expected several deltas');
}));

test('stream max_tokens 5: stop_reason max_tokens, output_tokens 5', log(async () => {
  const { frames } = await streaming(body({ max_tokens: 5 }));
  const { delta } = checkMessageStream(frames, assert);
  assert.equal(delta.delta.stop_reason, 'max_tokens');
  assert.equal(delta.usage.output_tokens, 5);
}));

test('stream with stop_sequences matches the non-streaming reply', log(async () => {
  const full = await nonStreaming(body({ max_tokens: 60 }));
  const words = full.text.split(/[^A-Za-z]+/).filter((w) => w.length >= 4);
  const stop = words.find((w, i) => i >= words.length / 2 && full.text.indexOf(w) > 0)
    ?? words.find((w) => full.text.indexOf(w) > 0);
  assert.ok(stop, `no stop word in ${JSON.stringify(full.text)}`);
  const b = body({ max_tokens: 60, stop_sequences: [stop] });
  const plain = await nonStreaming(b);
  const { frames } = await streaming(b);
  const { text, delta } = checkMessageStream(frames, assert);
  const ctx = `stop=${JSON.stringify(stop)} full=${JSON.stringify(full.text)}`;
  assert.equal(plain.msg.stop_reason, 'stop_sequence', ctx);
  assert.equal(delta.delta.stop_reason, 'stop_sequence', ctx);
  assert.equal(delta.delta.stop_sequence, stop, ctx);
  assert.equal(text, full.text.slice(0, full.text.indexOf(stop)), ctx);
  assert.equal(text, plain.text, ctx);
}));

test('stream to /v1/messages?beta=true with Claude Code style headers', log(async () => {
  const res = await post(srv.baseURL, '/v1/messages?beta=true', { ...body({ max_tokens: 8 }), stream: true }, {
    'anthropic-beta': 'claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14',
    'x-app': 'cli',
    'accept': 'application/json',
  });
  assert.equal(res.status, 200);
  checkMessageStream(parseSSE(await res.text()), assert);
}));

test('incremental SSE reader: same grammar, no unterminated trailing frame', log(async () => {
  const res = await post(srv.baseURL, '/v1/messages', { ...body({ max_tokens: 40 }), stream: true });
  assert.equal(res.status, 200);
  const frames = [];
  for await (const f of sseFrames(res)) frames.push(f);
  checkMessageStream(frames, assert);
  assert.ok(frames.every((f) => !f.unterminated), 'unterminated trailing frame');
}));
