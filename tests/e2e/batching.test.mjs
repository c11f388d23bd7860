// Continuous batching and the prefix cache seen from a client: concurrent streams each get the
// text they get alone; a repeated prompt is served from the prefix cache with the same text and
// honest usage (input + cache_creation + cache_read = count_tokens); when idle again every KV
// block is back (none used); a request past --request-timeout ends with an error.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MODEL_NAME, getMetrics, metricValue, parseSSE, post, readJSON, startServer, withLog,
} from './server.mjs';

const story = (k) => `Once upon a time, there was a little ${k % 2 ? 'dog' : 'girl'} named `
  + `${String.fromCharCode(65 + (k % 26))}. She liked to play in the park every day with her friends.`;

const ask = (content, extra = {}) => ({
  model: MODEL_NAME, max_tokens: 24, temperature: 0, messages: [{ role: 'user', content }], ...extra,
});

async function streamText(baseURL, body) {
  const res = await post(baseURL, '/v1/messages', { ...body, stream: true });
  assert.equal(res.status, 200);
  const frames = parseSSE(await res.text());
  assert.equal(frames.at(-1)?.event, 'message_stop', JSON.stringify(frames.slice(-3)));
  return frames.filter((f) => f.event === 'content_block_delta').map((f) => f.data.delta.text).join('');
}

describe('continuous batching', () => {
  let srv;
  const log = (fn) => withLog(() => srv, fn);
  before(async () => { srv = await startServer(['--parallel', '4']); });
  after(async () => { await srv?.stop(); });

  test('8 concurrent streams each get the text they get alone', log(async () => {
    const alone = [];
    for (let k = 0; k < 8; ++k) alone.push(await streamText(srv.baseURL, ask(story(k))));
    const together = await Promise.all(
      Array.from({ length: 8 }, (_, k) => streamText(srv.baseURL, ask(story(k)))));
    assert.deepEqual(together, alone);
    const { samples, text } = await getMetrics(srv.baseURL);
    assert.equal(metricValue(samples, 'pensieve_kv_blocks', { state: 'used' }), 0, text);
    const health = await readJSON(await fetch(`${srv.baseURL}/health`));
    assert.equal(health.kv_blocks.used, 0, JSON.stringify(health.kv_blocks));
    assert.equal(health.kv_blocks.free + health.kv_blocks.cached, health.kv_blocks.total);
  }));

  test('a repeated prompt is read from the prefix cache: same text, usage adds up', log(async () => {
    const prompt = [3, 4, 5, 6, 7, 8].map(story).join(" ");
    const counted = await readJSON(await post(srv.baseURL, '/v1/messages/count_tokens',
      { model: MODEL_NAME, messages: [{ role: 'user', content: prompt }] }));
    assert.ok(counted.input_tokens > 64, JSON.stringify(counted));
    const first = await readJSON(await post(srv.baseURL, '/v1/messages', ask(prompt)));
    const second = await readJSON(await post(srv.baseURL, '/v1/messages', ask(prompt)));
    assert.deepEqual(second.content, first.content);
    for (const m of [first, second]) {
      const u = m.usage;
      assert.equal(u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens,
        counted.input_tokens, JSON.stringify(u));
    }
    assert.equal(first.usage.cache_read_input_tokens, 0, JSON.stringify(first.usage));
    assert.ok(first.usage.cache_creation_input_tokens >= 64, JSON.stringify(first.usage));
    assert.ok(second.usage.cache_read_input_tokens >= 64, JSON.stringify(second.usage));
    const { samples, text } = await getMetrics(srv.baseURL);
    assert.ok(metricValue(samples, 'pensieve_prefix_cache_hit_tokens_total') >= 64, text);
    assert.ok(metricValue(samples, 'pensieve_prefix_cache_bytes') > 0, text);
  }));
});

describe('--request-timeout', () => {
  let srv;
  const log = (fn) => withLog(() => srv, fn);
  before(async () => {
    srv = await startServer(['--request-timeout', '1', '--debug-token-delay-ms', '100']);
  });
  after(async () => { await srv?.stop(); });

  test('a stream running past it ends with an error event; a whole reply is a 529', log(async () => {
    const started = Date.now();
    const res = await post(srv.baseURL, '/v1/messages', { ...ask('Once upon a time'), max_tokens: 200, stream: true });
    assert.equal(res.status, 200);
    const frames = parseSSE(await res.text());
    const last = frames.at(-1);
    assert.equal(last?.event, 'error', JSON.stringify(frames.slice(-2)));
    assert.match(last.data.error.message, /request-timeout/);
    const took = Date.now() - started;
    assert.ok(took >= 900 && took < 5000, `ended after ${took} ms`);
    const whole = await post(srv.baseURL, '/v1/messages', { ...ask('Once upon a time'), max_tokens: 200 });
    const body = await readJSON(whole);
    assert.equal(whole.status, 529, JSON.stringify(body));
    assert.match(body.error.message, /request-timeout/);
    const health = await readJSON(await fetch(`${srv.baseURL}/health`));
    assert.equal(health.kv_blocks.used, 0, JSON.stringify(health.kv_blocks));
  }));
});
