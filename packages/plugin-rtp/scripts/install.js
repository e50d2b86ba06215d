#!/usr/bin/env node
// Tolerant install step: build the native RTP sender with node-gyp when a compiler is there; otherwise say so and
// succeed, so that `npm install` of speakerd never fails for want of a compiler. Without the addon the rtp backend
// uses its JavaScript sender (same packets, more CPU) and says so at start-up. The addon needs only libc.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = join(dirname(fileURLToPath(import.meta.url)), '..');
const warn = (why) => {
  process.stderr.write(
    `@speakerd/plugin-rtp: the native addon was not built (${why}).\n` +
      `  The rtp backend uses its JavaScript sender (more CPU) until it is: install g++, make and python3\n` +
      `  (apt-get install g++ make python3), then run "npm rebuild @speakerd/plugin-rtp".\n`,
  );
  process.exit(0);
};

if (process.platform !== 'linux') warn(`the native sender is for Linux only, this is ${process.platform}`);
let gyp;
try {
  gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
} catch {
  warn('node-gyp is not installed');
}
const args = [gyp, 'rebuild'];
// Build against the headers of the running Node when they are installed next to it (no download needed).
const prefix = dirname(dirname(process.execPath));
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const r = spawnSync(process.execPath, args, { cwd: here, stdio: ['ignore', 'inherit', 'inherit'] });
if (r.error) warn(r.error.message);
if (r.status !== 0) warn(`node-gyp exited with status ${r.status}`);
