import { createServer } from 'node:http';
import { createHmac, createSecretKey, timingSafeEqual } from 'node:crypto';
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import { listen } from '../src/runtime/node.js';
import { startEngine } from '../src/runtime/engine.js';
import { createReceiver } from '../src/webhook/receiver.js';
import { createEngineMetrics } from '../src/webhook/metrics.js';
import { verifySignatureNode } from '../src/runtime/node.js';
import { withNodeReceiver } from '../src/runtime/node-receiver.js';
const ko = createSecretKey(Buffer.from('bench-key'));
const bare = new Hono(); bare.post('/ok', (c) => c.text('ok'));
const s = createAdaptorServer({ fetch: bare.fetch }); const a = await listen(s, 0, '127.0.0.1');
const raw = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const given = Buffer.from(req.headers['x-kloudless-signature'] as string, 'base64');
    const exp = createHmac('sha256', ko).update(body).digest();
    if (!timingSafeEqual(exp, given)) { res.writeHead(401); res.end(); return; }
    const n = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
    await Promise.resolve();
    const out = JSON.stringify({ accepted: true, account: n.account });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(out) });
    res.end(out);
  });
});
const r = await listen(raw, 0, '127.0.0.1');
const e1 = await startEngine({ port: 0, host: '127.0.0.1', rulesDir: 'rules', db: ':memory:', apiKey: 'bench-key', appId: 'bench', reloadIntervalMs: 0, schedules: false, log: () => {} });
const receiver = createReceiver({ keys: () => ['bench-key'], appId: 'a', enqueue: () => {}, metrics: createEngineMetrics(), trustContentLength: true, verify: verifySignatureNode });
const fastOnly = createServer(withNodeReceiver(receiver, (_q, res) => { res.writeHead(404); res.end(); }, () => {}));
const f = await listen(fastOnly, 0, '127.0.0.1');
const rawRecv = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const answer = await receiver.receive(body, req.headers['x-kloudless-signature'] as string, req.headers['content-type'] ?? null);
    res.writeHead(answer.status, { ...answer.headers, 'Content-Length': Buffer.byteLength(answer.body) });
    res.end(answer.body);
  });
});
const rr = await listen(rawRecv, 0, '127.0.0.1');
process.send?.({ bare: `http://127.0.0.1:${a.port}/ok`, raw: `http://127.0.0.1:${r.port}/webhooks/kloudless`, receiver: `${e1.url}/webhooks/kloudless`, fast: `http://127.0.0.1:${f.port}/webhooks/kloudless`, rawrecv: `http://127.0.0.1:${rr.port}/webhooks/kloudless` });
