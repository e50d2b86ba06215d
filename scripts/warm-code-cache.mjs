#!/usr/bin/env node
// Run by scripts/bundle.mjs, as `node scripts/warm-code-cache.mjs FILE...` with no flags (V8 rejects a cache made
// under other V8 flags, and a daemon runs with none): loads each vendor file once, which writes its code cache.
import { rmSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { cacheFileOf, requireVendor } from './code-cache-runtime.mjs';

for (const file of process.argv.slice(2)) {
  rmSync(cacheFileOf(file), { force: true });
  requireVendor(pathToFileURL(file));
}
