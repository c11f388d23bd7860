// The official @anthropic-ai/sdk against `pensieve serve`: messages.create, messages.stream,
// countTokens, stop sequences, max_tokens, system prompts, multi-turn.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { LILY, MODEL_NAME, STORY, accessLine, post, readJSON, startServer, withLog } from './server.mjs';

let srv;
let client;
const log = (fn) => withLog(() => srv, fn);

before(async () => {
  srv = await startServer();
  client = new Anthropic({ baseURL: srv.baseURL, apiKey: 'dummy', maxRetries: 0, timeout: 30_000 });
});
after(async () => { await srv?.stop(); });

const base = (extra = {}) => ({
  model: MODEL_NAME,
  max_tokens: 48,
  temperature: 0,
  messages: [{ role: 'user', content: STORY }],
  ...extra,
});

function textOf(msg) {
  assert.ok(Array.isArray(msg.content), `content is not an array: ${JSON.stringify(msg)}`);
  return msg.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
}

function checkMessage(msg, { model = MODEL_NAME } = {}) {
  const ctx = JSON.stringify(msg);
  assert.match(msg.id, /^msg_\w+/, ctx);
  assert.equal(msg.type, 'message', ctx);
  assert.equal(msg.role, 'assistant', ctx);
  assert.equal(msg.model, model, ctx);
  assert.ok(Array.isArray(msg.content), ctx);
  for (const block of msg.content) {
    assert.equal(block.type, 'text', ctx);
    assert.equal(typeof block.text, 'string', ctx);
  }
  assert.ok(['end_turn', 'max_tokens', 'stop_sequence', 'model_context_window_exceeded'].includes(msg.stop_reason), ctx);
  if (msg.stop_reason !== 'stop_sequence') assert.equal(msg.stop_sequence, null, ctx);
  const u = msg.usage;
  assert.equal(typeof u, 'object', ctx);
  assert.ok(Number.isInteger(u.input_tokens) && u.input_tokens > 0, ctx);
  assert.ok(Number.isInteger(u.output_tokens) && u.output_tokens >= 0, ctx);
  assert.equal(u.cache_creation_input_tokens, 0, ctx);
  assert.equal(u.cache_read_input_tokens, 0, ctx);
}

describe('messages.create (non-streaming)', () => {
  test('basic shape, usage and stop_reason', log(async () => {
    const { data: msg, request_id, response } = await client.messages.create(base()).withResponse();
    checkMessage(msg);
    assert.ok(['end_turn', 'max_tokens'].includes(msg.stop_reason), msg.stop_reason);
    assert.ok(msg.usage.output_tokens > 0);
    assert.ok(msg.usage.output_tokens <= 48);
    assert.ok(textOf(msg).length > 0, 'empty text');
    assert.match(request_id ?? '', /^req_\w+$/);
    assert.match(response.headers.get('content-type') ?? '', /application\/json/);
  }));

  test('greedy output is deterministic and looks like a story', log(async () => {
    const a = await client.messages.create(base({ messages: [{ role: 'user', content: 'Once upon a time' }] }));
    const b = await client.messages.create(base({ messages: [{ role: 'user', content: 'Once upon a time' }] }));
    assert.equal(textOf(a), textOf(b));
    assert.equal(a.usage.output_tokens, b.usage.output_tokens);
    assert.match(textOf(a), /[A-Za-z]{3,}/, `no words in ${JSON.stringify(textOf(a))}`);
  }));

  test('system as a string and as text blocks', log(async () => {
    const system = 'You are a friendly storyteller for small children.';
    const plain = await client.messages.create(base());
    const asString = await client.messages.create(base({ system }));
    const asBlocks = await client.messages.create(base({
      system: [{ type: 'text', text: system, cache_control: { type: 'ephemeral' } }],
    }));
    checkMessage(asString);
    checkMessage(asBlocks);
    assert.ok(asString.usage.input_tokens > plain.usage.input_tokens,
      `system prompt adds no tokens: ${asString.usage.input_tokens} vs ${plain.usage.input_tokens}`);
    assert.equal(asBlocks.usage.input_tokens, asString.usage.input_tokens,
      'one system text block should render like the same string');
    assert.equal(textOf(asBlocks), textOf(asString));
  }));

  test('multi-turn user/assistant/user', log(async () => {
    const single = await client.messages.create(base());
    const msg = await client.messages.create(base({
      messages: [
        { role: 'user', content: STORY },
        { role: 'assistant', content: 'She liked to play in the park with her red ball.' },
        { role: 'user', content: [{ type: 'text', text: 'One day, Lily saw a big dog.' }] },
      ],
    }));
    checkMessage(msg);
    assert.ok(msg.usage.input_tokens > single.usage.input_tokens);
    assert.ok(msg.usage.output_tokens > 0);
  }));

  test('mid-conversation role:"system" message (SDK and raw fetch)', log(async () => {
    const messages = [
      { role: 'user', content: STORY },
      { role: 'assistant', content: 'She had a big red ball.' },
      { role: 'system', content: 'Keep the story short.' },
      { role: 'user', content: 'What happened next?' },
    ];
    const msg = await client.messages.create(base({ messages }));
    checkMessage(msg);
    const res = await post(srv.baseURL, '/v1/messages', base({ messages }));
    const body = await readJSON(res);
    assert.equal(res.status, 200, JSON.stringify(body));
    checkMessage(body);
    assert.equal(body.usage.input_tokens, msg.usage.input_tokens);
    // a trailing system message, as Claude Code sends it
    const trailing = await client.messages.create(base({
      messages: [{ role: 'user', content: STORY }, { role: 'system', content: 'Be nice.' }],
    }));
    checkMessage(trailing);
  }));

  test('end of story: stop_reason end_turn before max_tokens', log(async () => {
    // with this prompt the model ends the story at once (EOS after a few tokens)
    const msg = await client.messages.create(base({ max_tokens: 48, messages: [{ role: 'user', content: LILY }] }));
    checkMessage(msg);
    assert.equal(msg.stop_reason, 'end_turn', JSON.stringify(msg));
    assert.ok(msg.usage.output_tokens < 48, JSON.stringify(msg));
    const stream = client.messages.stream(base({ max_tokens: 48, messages: [{ role: 'user', content: LILY }] }));
    const final = await stream.finalMessage();
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(textOf(final), textOf(msg));
    assert.equal(final.usage.output_tokens, msg.usage.output_tokens);
  }));

  test('max_tokens 5 stops with max_tokens after 5 tokens', log(async () => {
    const msg = await client.messages.create(base({ max_tokens: 5 }));
    checkMessage(msg);
    assert.equal(msg.stop_reason, 'max_tokens', JSON.stringify(msg));
    assert.equal(msg.usage.output_tokens, 5, JSON.stringify(msg));
  }));

  test('stop_sequences: stops before the first match and reports it', log(async () => {
    const full = await client.messages.create(base({ max_tokens: 60 }));
    const text = textOf(full);
    const words = text.split(/[^A-Za-z]+/).filter((w) => w.length >= 4);
    // first word (from the middle on) whose first occurrence is well inside the text
    let stop = null;
    for (let i = Math.floor(words.length / 2); i < words.length && !stop; i++) {
      const at = text.indexOf(words[i]);
      if (at >= text.length / 4) stop = words[i];
    }
    for (let i = 0; i < words.length && !stop; i++) {
      if (text.indexOf(words[i]) > 0) stop = words[i];
    }
    assert.ok(stop, `no usable stop word in greedy text ${JSON.stringify(text)}`);
    const expected = text.slice(0, text.indexOf(stop));
    const msg = await client.messages.create(base({ max_tokens: 60, stop_sequences: ['zzzqqq', stop] }));
    checkMessage(msg);
    const ctx = `stop=${JSON.stringify(stop)} full=${JSON.stringify(text)} got=${JSON.stringify(msg)}`;
    assert.equal(msg.stop_reason, 'stop_sequence', ctx);
    assert.equal(msg.stop_sequence, stop, ctx);
    assert.equal(textOf(msg), expected, ctx);
    assert.ok(msg.usage.output_tokens <= full.usage.output_tokens, ctx);
  }));

  test('any model name is accepted and echoed; query string is ignored', log(async () => {
    for (const model of ['claude-local-e2e-1', 'my-local-model']) {
      const msg = await client.messages.create(base({ model, max_tokens: 3 }));
      checkMessage(msg, { model });
    }
    const res = await post(srv.baseURL, '/v1/messages?beta=true', base({ max_tokens: 3 }));
    const body = await readJSON(res);
    assert.equal(res.status, 200, JSON.stringify(body));
    checkMessage(body);
    assert.match(res.headers.get('request-id') ?? '', /^req_\w+$/);
  }));

  test('unknown fields and anthropic-beta values are accepted', log(async () => {
    const res = await post(srv.baseURL, '/v1/messages', {
      ...base({ max_tokens: 3 }),
      metadata: { user_id: '{"session":"x"}' },
      some_future_field: { a: 1 },
      top_k: 40,
      top_p: 0.9,
    }, { 'anthropic-beta': 'claude-code-20250219,some-unknown-beta-2099-01-01' });
    const body = await readJSON(res);
    assert.equal(res.status, 200, JSON.stringify(body));
    checkMessage(body);
  }));

  test('access log line carries method, path, status, token counts and request id', log(async () => {
    const { data: msg, request_id } = await client.messages.create(base({ max_tokens: 7 })).withResponse();
    const line = await accessLine(srv, request_id);
    assert.ok(line, `no access log line with ${request_id}`);
    assert.match(line, /access:.*\bPOST\b.*\/v1\/messages\b.*\b200\b/, line);
    assert.match(line, new RegExp(`\\bin=${msg.usage.input_tokens}\\b`), line);
    assert.match(line, new RegExp(`\\bout=${msg.usage.output_tokens}\\b`), line);
    assert.match(line, /\bms=\d+(\.\d+)?/, line);
    assert.match(line, new RegExp(`request_id=${request_id}\\b`), line);
  }));
});

describe('messages.stream / stream:true', () => {
  test('stream().finalMessage() equals the non-streaming greedy reply', log(async () => {
    const params = base({ max_tokens: 40 });
    const plain = await client.messages.create(params);
    const stream = client.messages.stream(params);
    let streamed = '';
    stream.on('text', (delta) => { streamed += delta; });
    const final = await stream.finalMessage();
    checkMessage(final);
    assert.equal(textOf(final), textOf(plain));
    assert.equal(streamed, textOf(plain));
    assert.equal(final.stop_reason, plain.stop_reason);
    assert.equal(final.usage.output_tokens, plain.usage.output_tokens);
    assert.equal(final.usage.input_tokens, plain.usage.input_tokens);
    assert.match(stream.request_id ?? '', /^req_\w+$/);
  }));

  test('for await over create({stream:true}) events', log(async () => {
    const params = base({ max_tokens: 30 });
    const plain = await client.messages.create(params);
    const stream = await client.messages.create({ ...params, stream: true });
    const types = [];
    let text = '';
    let usage = null;
    let stopReason = null;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
      if (ev.type === 'message_delta') { usage = ev.usage; stopReason = ev.delta.stop_reason; }
    }
    const ctx = types.join(',');
    assert.equal(types[0], 'message_start', ctx);
    assert.equal(types.at(-1), 'message_stop', ctx);
    assert.equal(types.filter((t) => t === 'message_delta').length, 1, ctx);
    assert.equal(text, textOf(plain));
    assert.equal(stopReason, plain.stop_reason);
    assert.equal(usage?.output_tokens, plain.usage.output_tokens);
  }));

  test('for await over messages.stream() with max_tokens 5', log(async () => {
    const stream = client.messages.stream(base({ max_tokens: 5 }));
    const types = [];
    for await (const ev of stream) types.push(ev.type);
    const final = await stream.finalMessage();
    assert.equal(final.stop_reason, 'max_tokens');
    assert.equal(final.usage.output_tokens, 5);
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
  }));
});

describe('messages.countTokens', () => {
  const cases = {
    'single user message': { messages: [{ role: 'user', content: STORY }] },
    'system string': { system: 'You tell stories.', messages: [{ role: 'user', content: STORY }] },
    'system blocks + multi-turn': {
      system: [{ type: 'text', text: 'You tell stories.' }, { type: 'text', text: 'Short ones.' }],
      messages: [
        { role: 'user', content: STORY },
        { role: 'assistant', content: [{ type: 'text', text: 'She had a cat.' }] },
        { role: 'user', content: 'Go on.' },
      ],
    },
  };
  for (const [name, body] of Object.entries(cases)) {
    test(`equals usage.input_tokens: ${name}`, log(async () => {
      const counted = await client.messages.countTokens({ model: MODEL_NAME, ...body });
      assert.ok(Number.isInteger(counted.input_tokens) && counted.input_tokens > 0, JSON.stringify(counted));
      const msg = await client.messages.create({ model: MODEL_NAME, max_tokens: 1, temperature: 0, ...body });
      assert.equal(counted.input_tokens, msg.usage.input_tokens);
    }));
  }

  test('raw POST /v1/messages/count_tokens?beta=true returns {"input_tokens": N}', log(async () => {
    const res = await post(srv.baseURL, '/v1/messages/count_tokens?beta=true', { model: MODEL_NAME, ...cases['system string'] });
    const body = await readJSON(res);
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.ok(Number.isInteger(body.input_tokens) && body.input_tokens > 0, JSON.stringify(body));
    assert.match(res.headers.get('request-id') ?? '', /^req_\w+$/);
  }));
});

describe('thinking blocks', () => {
  // A prefill that opens the reasoning ("<think>") leaves the reply inside it: the model's text
  // comes back as a thinking block with a signature, streamed or not.
  const thinking = base({
    max_tokens: 12,
    messages: [{ role: 'user', content: STORY }, { role: 'assistant', content: '<think>' }],
  });

  test('messages.create: a thinking block with its signature', log(async () => {
    const msg = await client.messages.create(thinking);
    assert.equal(msg.content.length, 1, JSON.stringify(msg));
    const [block] = msg.content;
    assert.equal(block.type, 'thinking', JSON.stringify(msg));
    assert.ok(block.thinking.length > 0, JSON.stringify(msg));
    assert.match(block.signature, /^pensieve-[0-9a-f]{16}$/);
    assert.equal(msg.stop_reason, 'max_tokens');
  }));

  test('messages.stream: thinking_delta events, then signature_delta; same text', log(async () => {
    const whole = await client.messages.create(thinking);
    const events = [];
    const stream = client.messages.stream(thinking);
    stream.on('streamEvent', (e) => events.push(e));
    const final = await stream.finalMessage();
    assert.deepEqual(final.content, whole.content);
    const deltas = events.filter((e) => e.type === 'content_block_delta').map((e) => e.delta.type);
    assert.ok(deltas.length >= 2, JSON.stringify(events));
    assert.ok(deltas.slice(0, -1).every((t) => t === 'thinking_delta'), JSON.stringify(deltas));
    assert.equal(deltas.at(-1), 'signature_delta');
  }));
});
