/**
 * Runs the GCS JSON API test server on its own (for manual use and other tools):
 *
 *   node dist/test/gcs-server/main.js [--port 4443] [--bucket NAME]... [--notify URL[@bucket]]... [--dir DIR]
 *
 * Prints one line `GCS READY {"host": "http://127.0.0.1:PORT", ...}` and serves until SIGTERM/SIGINT.
 */
import { startGcsServer, type NotifyTarget } from './server.js';

const args = process.argv.slice(2);
let port = 0;
let dir: string | undefined;
const buckets: string[] = [];
const notify: NotifyTarget[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const val = (): string => {
    const v = args[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    return v;
  };
  if (a === '--port') port = Number(val());
  else if (a === '--bucket') buckets.push(val());
  else if (a === '--dir') dir = val();
  else if (a === '--notify') {
    // URL@bucket limits a target to one bucket.
    const v = val();
    const at = v.lastIndexOf('@');
    notify.push(at > v.indexOf('://') + 3 && !v.slice(at).includes('/') ? { url: v.slice(0, at), bucketFilter: v.slice(at + 1) } : { url: v });
  } else {
    process.stderr.write(`unknown argument: ${a}\n`);
    process.exit(2);
  }
}

const server = await startGcsServer({ port, buckets, notify, dir });
process.stdout.write(`GCS READY ${JSON.stringify({ host: server.host, port: server.port, buckets: server.buckets() })}\n`);
const stop = (): void => {
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
