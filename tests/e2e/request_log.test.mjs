// --log-requests DIR: each request to /v1/messages, count_tokens and /v1/chat/completions saved
// as one JSON file (the body, the route, headers without the key); other routes are not saved.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { MODEL_NAME, post, readJSON, startServer, withLog } from './server.mjs';

const KEY = 'sk-request-log-secret';
let srv;
let dir;
const log = (fn) => withLog(() => srv, fn);

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'pensieve-requests-'));
  srv = await startServer(['--log-requests', path.join(dir, 'requests'), '--api-key', KEY]);
});
after(async () => {
  await srv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('each API request is saved once, without its key', log(async () => {
  const client = new Anthropic({ baseURL: srv.baseURL, apiKey: KEY, maxRetries: 0, timeout: 30_000 });
  const message = { model: MODEL_NAME, messages: [{ role: 'user', content: 'Once upon a time' }] };
  const counted = await client.messages.countTokens(message);
  assert.ok(counted.input_tokens > 0);
  await client.messages.create({ ...message, max_tokens: 4, temperature: 0 });
  const bad = await post(srv.baseURL, '/v1/chat/completions', '{"messages": 1}', { authorization: `Bearer ${KEY}` });
  assert.equal(bad.status, 400, JSON.stringify(await readJSON(bad)));
  await fetch(`${srv.baseURL}/health`);
  await fetch(`${srv.baseURL}/v1/models`, { headers: { 'x-api-key': KEY } });

  const files = readdirSync(path.join(dir, 'requests')).sort();
  assert.equal(files.length, 3, files.join(', '));
  const routes = files.map((f) => f.replace(/^\d{8}T\d{6}\.\d{3}Z-req_\w+-/, ''));
  assert.deepEqual(routes.sort(), ['chat_completions.json', 'count_tokens.json', 'messages.json']);
  for (const f of files) {
    const text = readFileSync(path.join(dir, 'requests', f), 'utf8');
    assert.ok(!text.includes(KEY), `${f} holds the API key`);
    const entry = JSON.parse(text);
    assert.equal(entry.method, 'POST');
    assert.match(entry.request_id, /^req_\w+$/);
    assert.ok(f.includes(entry.request_id), f);
    assert.equal(entry.headers['x-api-key'], undefined);
    assert.equal(entry.headers.authorization, undefined);
    if (f.endsWith('-messages.json')) {
      assert.equal(entry.path, '/v1/messages');
      assert.equal(entry.status, 200);
      assert.equal(entry.body.max_tokens, 4);
      assert.equal(entry.body.messages[0].content, 'Once upon a time');
      assert.match(entry.headers['anthropic-version'], /^\d{4}-\d{2}-\d{2}$/);
    } else if (f.endsWith('-chat_completions.json')) {
      assert.equal(entry.status, 400);
      assert.deepEqual(entry.body, { messages: 1 });
      assert.ok(entry.error, JSON.stringify(entry));
    } else {
      assert.equal(entry.path, '/v1/messages/count_tokens');
      assert.equal(entry.body.max_tokens, undefined);
    }
  }
}));
