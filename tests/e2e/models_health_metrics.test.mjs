// GET /v1/models (Anthropic and OpenAI shapes), /v1/models/{id}, /health, /metrics.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { MODEL_NAME, STORY, getMetrics, metricValue, post, readJSON, startServer, withLog } from './server.mjs';

let srv;
let client;
const log = (fn) => withLog(() => srv, fn);

before(async () => {
  srv = await startServer();
  client = new Anthropic({ baseURL: srv.baseURL, apiKey: 'dummy', maxRetries: 0, timeout: 30_000 });
});
after(async () => { await srv?.stop(); });

function checkAnthropicModel(m) {
  const ctx = JSON.stringify(m);
  assert.equal(m.type, 'model', ctx);
  assert.equal(typeof m.id, 'string', ctx);
  assert.ok(m.id.length > 0, ctx);
  assert.equal(typeof m.display_name, 'string', ctx);
  assert.match(m.created_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/, ctx);
  assert.ok(!Number.isNaN(Date.parse(m.created_at)), ctx);
}

test('GET /v1/models: Anthropic shape (raw and client.models.list())', log(async () => {
  const res = await fetch(`${srv.baseURL}/v1/models`, { headers: { 'x-api-key': 'dummy', 'anthropic-version': '2023-06-01' } });
  const body = await readJSON(res);
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.match(res.headers.get('request-id') ?? '', /^req_\w+$/);
  assert.ok(Array.isArray(body.data) && body.data.length >= 1, JSON.stringify(body));
  body.data.forEach(checkAnthropicModel);
  assert.equal(body.has_more, false);
  assert.equal(body.first_id, body.data[0].id);
  assert.equal(body.last_id, body.data.at(-1).id);

  const listed = [];
  for await (const m of client.models.list()) listed.push(m);
  assert.deepEqual(listed.map((m) => m.id), body.data.map((m) => m.id));
  listed.forEach(checkAnthropicModel);
}));

test('GET /v1/models/{id}: Anthropic shape (raw and client.models.retrieve())', log(async () => {
  const list = await readJSON(await fetch(`${srv.baseURL}/v1/models`));
  const id = list.data[0].id;
  const res = await fetch(`${srv.baseURL}/v1/models/${encodeURIComponent(id)}`, { headers: { 'anthropic-version': '2023-06-01' } });
  const m = await readJSON(res);
  assert.equal(res.status, 200, JSON.stringify(m));
  checkAnthropicModel(m);
  assert.equal(m.id, id);
  const viaSdk = await client.models.retrieve(id);
  checkAnthropicModel(viaSdk);
  assert.equal(viaSdk.id, id);
}));

test('GET /v1/models: OpenAI shape for Bearer without anthropic-version', log(async () => {
  const res = await fetch(`${srv.baseURL}/v1/models`, { headers: { authorization: 'Bearer x' } });
  const body = await readJSON(res);
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.object, 'list', JSON.stringify(body));
  assert.ok(Array.isArray(body.data) && body.data.length >= 1);
  for (const m of body.data) {
    assert.equal(m.object, 'model', JSON.stringify(m));
    assert.equal(typeof m.id, 'string');
    assert.ok(Number.isInteger(m.created), JSON.stringify(m));
    assert.equal(typeof m.owned_by, 'string', JSON.stringify(m));
  }
  // Bearer + anthropic-version is an Anthropic client
  const res2 = await fetch(`${srv.baseURL}/v1/models`, { headers: { authorization: 'Bearer x', 'anthropic-version': '2023-06-01' } });
  const body2 = await readJSON(res2);
  assert.equal(body2.has_more, false, JSON.stringify(body2));
  body2.data.forEach(checkAnthropicModel);
}));

test('GET /health: 200 JSON with status', log(async () => {
  const res = await fetch(`${srv.baseURL}/health`);
  const body = await readJSON(res);
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(typeof body.status, 'string', JSON.stringify(body));
  assert.match(res.headers.get('request-id') ?? '', /^req_\w+$/);
}));

test('GET /metrics: Prometheus text with the documented names after some requests', log(async () => {
  for (const stream of [false, true]) {
    const res = await post(srv.baseURL, '/v1/messages', {
      model: MODEL_NAME, max_tokens: 6, temperature: 0, stream, messages: [{ role: 'user', content: STORY }],
    });
    assert.equal(res.status, 200);
    await res.text();
  }
  await (await fetch(`${srv.baseURL}/v1/nope`)).text();
  const { status, headers, text, samples } = await getMetrics(srv.baseURL);
  assert.equal(status, 200);
  assert.match(headers.get('content-type') ?? '', /^text\/plain/);
  const names = [
    'pensieve_requests_total',
    'pensieve_input_tokens_total',
    'pensieve_output_tokens_total',
    'pensieve_generations_total',
    'pensieve_time_to_first_token_seconds',
    'pensieve_generation_tokens_per_second',
    'pensieve_queue_depth',
    'pensieve_requests_in_flight',
  ];
  const missing = names.filter((n) => !samples.some((s) => s.name === n || s.name.startsWith(`${n}_`)));
  assert.deepEqual(missing, [], `missing metrics; /metrics was:\n${text}`);
  const ok200 = metricValue(samples, 'pensieve_requests_total', { route: '/v1/messages', status: '200' });
  assert.ok(ok200 >= 2, `pensieve_requests_total{route="/v1/messages",status="200"} = ${ok200}\n${text}`);
  assert.ok(metricValue(samples, 'pensieve_input_tokens_total') > 0, text);
  assert.ok(metricValue(samples, 'pensieve_output_tokens_total') >= 12, text);
  for (const h of ['pensieve_time_to_first_token_seconds', 'pensieve_generation_tokens_per_second']) {
    assert.ok(samples.some((s) => s.name === `${h}_bucket` && s.labels.le === '+Inf'), `${h} is not a histogram\n${text}`);
    assert.ok(metricValue(samples, `${h}_count`) >= 2, `${h}_count\n${text}`);
  }
  assert.match(text, /^# TYPE pensieve_requests_total counter$/m);
  assert.match(text, /^# TYPE pensieve_time_to_first_token_seconds histogram$/m);
  assert.match(text, /^# TYPE pensieve_queue_depth gauge$/m);
}));
