// Forced tool calls through the official SDK: tool_choice {type: "tool"} (and "any" with one
// tool) makes even a tiny story model write a call whose input is valid against the tool's
// schema, whole or streamed as input_json_delta; the tool result then goes back into the prompt.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { MODEL_NAME, SHARED, post, readJSON, startServer, withLog } from './server.mjs';

// stories260K's vocabulary spells every byte (TinyStories-656K's has no '{').
const MODEL = path.join(SHARED, 'models', 'stories260K.gguf');

const weather = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: {
    type: 'object',
    properties: {
      city: { type: 'string' },
      unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      days: { type: 'integer' },
    },
    required: ['city', 'unit'],
    additionalProperties: false,
  },
};

// What the schema promises, checked by hand.
function checkInput(input) {
  const ctx = JSON.stringify(input);
  assert.equal(typeof input, 'object', ctx);
  assert.equal(typeof input.city, 'string', ctx);
  assert.ok(['celsius', 'fahrenheit'].includes(input.unit), ctx);
  if ('days' in input) assert.ok(Number.isInteger(input.days), ctx);
  for (const key of Object.keys(input)) assert.ok(['city', 'unit', 'days'].includes(key), ctx);
}

let srv;
let client;
const log = (fn) => withLog(() => srv, fn);
before(async () => {
  srv = await startServer([], { model: MODEL });
  client = new Anthropic({ baseURL: srv.baseURL, apiKey: 'dummy', maxRetries: 0, timeout: 60_000 });
});
after(async () => { await srv?.stop(); });

const ask = (extra = {}) => ({
  model: MODEL_NAME,
  max_tokens: 300,
  temperature: 0,
  messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
  tools: [weather],
  tool_choice: { type: 'tool', name: 'get_weather' },
  ...extra,
});

describe('tool_choice forces a valid call', () => {
  test('messages.create: one tool_use block, valid input, stop_reason tool_use', log(async () => {
    const msg = await client.messages.create(ask());
    assert.equal(msg.stop_reason, 'tool_use', JSON.stringify(msg));
    assert.equal(msg.content.length, 1, JSON.stringify(msg));
    const [call] = msg.content;
    assert.equal(call.type, 'tool_use');
    assert.equal(call.name, 'get_weather');
    assert.match(call.id, /^toolu_\w+$/);
    checkInput(call.input);
  }));

  test('messages.stream: input_json_delta pieces add up to the same input', log(async () => {
    const whole = await client.messages.create(ask());
    const deltas = [];
    const stream = client.messages.stream(ask());
    stream.on('streamEvent', (e) => {
      if (e.type === 'content_block_delta') deltas.push(e.delta);
    });
    const final = await stream.finalMessage();
    assert.ok(deltas.length > 1 && deltas.every((d) => d.type === 'input_json_delta'), JSON.stringify(deltas));
    assert.equal(final.stop_reason, 'tool_use');
    assert.deepEqual(final.content[0].input, whole.content[0].input);
    checkInput(JSON.parse(deltas.map((d) => d.partial_json).join('')));
  }));

  test('tool_choice any with one tool calls it', log(async () => {
    const msg = await client.messages.create(ask({ tool_choice: { type: 'any' } }));
    assert.equal(msg.content[0].type, 'tool_use');
    checkInput(msg.content[0].input);
  }));

  test('round trip: the tool_result is rendered into the next prompt', log(async () => {
    const first = await client.messages.create(ask());
    const call = first.content[0];
    const followUp = {
      model: MODEL_NAME,
      max_tokens: 16,
      temperature: 0,
      tools: [weather],
      messages: [
        { role: 'user', content: 'What is the weather in Paris?' },
        { role: 'assistant', content: [call] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'Sunny, 21 degrees' }] },
      ],
    };
    const counted = await client.messages.countTokens({ model: MODEL_NAME, messages: followUp.messages, tools: [weather] });
    const without = await client.messages.countTokens({ model: MODEL_NAME, tools: [weather], messages: followUp.messages.slice(0, 2).concat([{ role: 'user', content: 'x' }]) });
    assert.ok(counted.input_tokens > without.input_tokens, 'the result text is in the prompt');
    const reply = await client.messages.create(followUp);
    assert.equal(reply.content[0].type, 'text', JSON.stringify(reply));
  }));

  test('bad tool_choice: unknown name, or no tools', log(async () => {
    let res = await post(srv.baseURL, '/v1/messages', ask({ tool_choice: { type: 'tool', name: 'nope' } }));
    let body = await readJSON(res);
    assert.equal(res.status, 400);
    assert.match(body.error.message, /tool_choice.name: 'nope' is not one of the tools/);
    res = await post(srv.baseURL, '/v1/messages', ask({ tools: undefined }));
    body = await readJSON(res);
    assert.equal(res.status, 400);
    assert.match(body.error.message, /needs tools/);
  }));
});
