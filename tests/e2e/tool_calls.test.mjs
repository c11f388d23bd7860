// Calls of any of several tools through the official SDKs: tool_choice any (Anthropic) and
// required / a named function (OpenAI) make a tiny story model write one call of one of the
// tools with input valid against that tool's schema, whole or streamed; a prefill that ends with
// the call opener makes the reply a call under tool_choice auto; disable_parallel_tool_use
// keeps it to one call.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { MODEL_NAME, SHARED, startServer, withLog } from './server.mjs';

// stories260K's vocabulary spells every byte (TinyStories-656K's has no '{').
const MODEL = path.join(SHARED, 'models', 'stories260K.gguf');

const weather = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
    required: ['city', 'unit'],
    additionalProperties: false,
  },
};
const time = {
  name: 'get_time',
  description: 'The time in a time zone',
  input_schema: {
    type: 'object',
    properties: { zone: { type: 'string', enum: ['UTC', 'CET'] } },
    required: ['zone'],
    additionalProperties: false,
  },
};

// What each schema promises, checked by hand.
function checkCall(name, input) {
  const ctx = `${name} ${JSON.stringify(input)}`;
  assert.equal(typeof input, 'object', ctx);
  if (name === 'get_weather') {
    assert.deepEqual(Object.keys(input).sort(), ['city', 'unit'], ctx);
    assert.equal(typeof input.city, 'string', ctx);
    assert.ok(['celsius', 'fahrenheit'].includes(input.unit), ctx);
  } else {
    assert.equal(name, 'get_time', ctx);
    assert.deepEqual(Object.keys(input), ['zone'], ctx);
    assert.ok(['UTC', 'CET'].includes(input.zone), ctx);
  }
}

let srv;
let anthropic;
let openai;
const log = (fn) => withLog(() => srv, fn);
before(async () => {
  srv = await startServer([], { model: MODEL });
  anthropic = new Anthropic({ baseURL: srv.baseURL, apiKey: 'dummy', maxRetries: 0, timeout: 60_000 });
  openai = new OpenAI({ baseURL: `${srv.baseURL}/v1`, apiKey: 'x', maxRetries: 0, timeout: 60_000 });
});
after(async () => { await srv?.stop(); });

const ask = (extra = {}) => ({
  model: MODEL_NAME,
  max_tokens: 300,
  temperature: 0,
  messages: [{ role: 'user', content: 'What is the weather in Paris, and the time?' }],
  tools: [weather, time],
  tool_choice: { type: 'any' },
  ...extra,
});

describe('Anthropic: calls of any of several tools', () => {
  test('tool_choice any: one valid call of one of the tools', log(async () => {
    for (const temperature of [0, 1]) {
      const msg = await anthropic.messages.create(ask({ temperature, tool_choice: { type: 'any', disable_parallel_tool_use: true } }));
      assert.equal(msg.stop_reason, 'tool_use', JSON.stringify(msg));
      const calls = msg.content.filter((b) => b.type === 'tool_use');
      assert.equal(calls.length, 1, JSON.stringify(msg));
      assert.match(calls[0].id, /^toolu_\w+$/);
      checkCall(calls[0].name, calls[0].input);
    }
  }));

  test('streamed: tool_use block start, then input_json_delta pieces of valid input', log(async () => {
    const events = [];
    const stream = anthropic.messages.stream(ask({ tool_choice: { type: 'any', disable_parallel_tool_use: true } }));
    stream.on('streamEvent', (e) => events.push(e));
    const final = await stream.finalMessage();
    const start = events.find((e) => e.type === 'content_block_start');
    assert.equal(start.content_block.type, 'tool_use', JSON.stringify(events));
    assert.deepEqual(start.content_block.input, {});
    const deltas = events.filter((e) => e.type === 'content_block_delta').map((e) => e.delta);
    assert.ok(deltas.length > 1 && deltas.every((d) => d.type === 'input_json_delta'), JSON.stringify(deltas));
    const input = JSON.parse(deltas.map((d) => d.partial_json).join(''));
    checkCall(start.content_block.name, input);
    assert.equal(final.stop_reason, 'tool_use');
    assert.deepEqual(final.content[0].input, input);
  }));

  test('tool_choice auto: a prefill that opens a call makes the reply that call', log(async () => {
    const msg = await anthropic.messages.create(ask({
      tool_choice: { type: 'auto', disable_parallel_tool_use: true },
      messages: [
        { role: 'user', content: 'What is the weather in Paris?' },
        { role: 'assistant', content: 'Let me check. <tool_call>' },
      ],
    }));
    assert.equal(msg.stop_reason, 'tool_use', JSON.stringify(msg));
    const calls = msg.content.filter((b) => b.type === 'tool_use');
    assert.equal(calls.length, 1, JSON.stringify(msg));
    checkCall(calls[0].name, calls[0].input);
  }));

  test('tool_choice none: no call, text only', log(async () => {
    const msg = await anthropic.messages.create(ask({ max_tokens: 30, tool_choice: { type: 'none' } }));
    assert.ok(msg.content.every((b) => b.type === 'text'), JSON.stringify(msg));
    assert.notEqual(msg.stop_reason, 'tool_use');
  }));
});

describe('OpenAI: tool_choice required and named functions', () => {
  const tools = [weather, time].map((t) => ({
    type: 'function',
    function: { name: t.name, description: t.description, parameters: t.input_schema },
  }));
  const chat = (extra) => ({
    model: MODEL_NAME,
    max_tokens: 300,
    temperature: 0,
    messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    tools,
    parallel_tool_calls: false,
    ...extra,
  });

  test('named function: tool_calls with its arguments as a JSON string', log(async () => {
    const res = await openai.chat.completions.create(chat({ tool_choice: { type: 'function', function: { name: 'get_time' } } }));
    const [choice] = res.choices;
    assert.equal(choice.finish_reason, 'tool_calls', JSON.stringify(res));
    assert.equal(choice.message.tool_calls.length, 1);
    const [call] = choice.message.tool_calls;
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_time');
    checkCall('get_time', JSON.parse(call.function.arguments));
  }));

  test('required, streamed: tool_calls deltas add up to one valid call', log(async () => {
    const stream = await openai.chat.completions.create(chat({ tool_choice: 'required', stream: true }));
    let name = '';
    let args = '';
    let finish = null;
    for await (const chunk of stream) {
      const [choice] = chunk.choices;
      if (!choice) continue;
      for (const call of choice.delta.tool_calls ?? []) {
        assert.equal(call.index, 0);
        if (call.function?.name) name = call.function.name;
        args += call.function?.arguments ?? '';
      }
      finish = choice.finish_reason ?? finish;
    }
    assert.equal(finish, 'tool_calls');
    checkCall(name, JSON.parse(args));
  }));
});

describe('--tool-first: a new user message is answered with a call, tool results freely', () => {
  let first;
  let client;
  before(async () => {
    first = await startServer(['--tool-first'], { model: MODEL });
    client = new Anthropic({ baseURL: first.baseURL, apiKey: 'dummy', maxRetries: 0, timeout: 60_000 });
  });
  after(async () => { await first?.stop(); });

  test('user message: a call; its tool_result: a text reply', withLog(() => first, async () => {
    const base = ask({ tool_choice: undefined, temperature: 0 });
    const msg = await client.messages.create(base);
    assert.equal(msg.stop_reason, 'tool_use', JSON.stringify(msg));
    const call = msg.content.find((b) => b.type === 'tool_use');
    checkCall(call.name, call.input);
    const reply = await client.messages.create({
      ...base,
      max_tokens: 40,
      messages: [
        ...base.messages,
        { role: 'assistant', content: msg.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'Sunny' }, { type: 'text', text: 'Thanks.' }] },
      ],
    });
    assert.ok(reply.content.every((b) => b.type !== 'tool_use'), JSON.stringify(reply));
    // The client's own choice wins.
    const none = await client.messages.create({ ...base, max_tokens: 20, tool_choice: { type: 'none' } });
    assert.ok(none.content.every((b) => b.type === 'text'), JSON.stringify(none));
  }));
});
