/**
 * One function instance for the local stack: serves a single target of functions/index.ts on
 * 127.0.0.1 through the functions-framework (`node instance.js TARGET PORT`), like one Cloud Run
 * instance. Prints `INSTANCE READY` once listening; exits on SIGTERM.
 */
import type { Server } from 'node:http';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import '../../functions/index.js';

const [target, port] = process.argv.slice(2);
if (!target || !port) {
  process.stderr.write('usage: instance.js TARGET PORT\n');
  process.exit(2);
}
const server = getTestServer(target) as Server;
server.listen(Number(port), '127.0.0.1', () => process.stdout.write(`INSTANCE READY ${target} ${port}\n`));
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
