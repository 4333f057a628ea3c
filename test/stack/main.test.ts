/**
 * `npm run stack` as users run it: `node dist/test/stack/stack.js` prints exactly one
 * `STACK READY {json}` line with the documented keys, serves, and on SIGTERM stops everything,
 * including the Pub/Sub emulator's process group (its port is closed afterwards).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { distRoot } from '../support/oracles.js';
import { needPubsubEmulator } from './helpers.js';

const portOpen = (hostPort: string) =>
  new Promise<boolean>((resolve) => {
    const [host, port] = hostPort.replace(/^https?:\/\//, '').split(':');
    const s = net.connect(Number(port), host!, () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

test('npm run stack prints STACK READY with the documented keys and stops everything on SIGTERM', { timeout: 240_000 }, async (t) => {
  if (!needPubsubEmulator(t)) return;
  const child = spawn(process.execPath, [path.join(distRoot, 'test', 'stack', 'stack.js')], { env: { ...process.env, GEOTFR_LOG_LEVEL: 'NONE' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const ready = await new Promise<Record<string, any>>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('STACK READY '));
      if (line && out.includes('\n')) resolve(JSON.parse(line.slice('STACK READY '.length)));
    });
    child.once('exit', (code) => reject(new Error(`stack exited ${code} before READY:\n${err}`)));
  });
  for (const k of ['pubsubHost', 'storageHost', 'projectId', 'requestTopic', 'bucket']) assert.equal(typeof ready[k], 'string', k);
  assert.equal(await portOpen(ready.pubsubHost), true);
  const emu = await fetch(`http://${ready.pubsubHost}/`);
  assert.equal((await emu.text()).trim(), 'Ok');
  const bucket = await fetch(`${ready.storageHost}/storage/v1/b/${ready.bucket}`);
  assert.equal(bucket.status, 200);
  const topics = (await (await fetch(`http://${ready.pubsubHost}/v1/projects/${ready.projectId}/topics`)).json()) as { topics: { name: string }[] };
  assert.ok(topics.topics.some((x) => x.name.endsWith(`/topics/${ready.requestTopic}`)));
  // An empty POST to planExport is a clear 400, not a crash.
  const bad = await fetch(ready.functions.planExport, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' });
  assert.equal(bad.status, 400);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0, err);
  assert.equal(out.split('\n').filter((l) => l.startsWith('STACK READY')).length, 1);
  for (const hp of [ready.pubsubHost, ready.storageHost, ...Object.values(ready.functions as Record<string, string>)]) assert.equal(await portOpen(hp), false, `${hp} still listening`);
});
