// Bundled by scripts/bundle.mjs into each package whose npm dependencies it builds as one CommonJS file beside the
// bundles (dist/vendor.<content hash>.cjs): loads that file through V8's code cache, so a start-up deserialises the compiled code
// of zod, commander, pino… instead of compiling 800 KB of JavaScript again (docs/benchmarks.md). This is what
// Node >= 22.1's module.enableCompileCache() does for every module; there, Node's own cache is used instead.
//
// The cache sits beside the file (`vendor.<hash>.cjs.<Node version>-<arch>.v8cache`), keyed by the file's content
// (its name: V8 itself compares only the source's length), Node's version and the architecture:
// `npm run build` writes the one for the Node that builds (scripts/warm-code-cache.mjs), a run under another Node
// writes its own where it may. V8 checks the source, its version and its flags and rejects a cache that does not
// fit (a run with other V8 flags then writes it anew); a missing, rejected or unwritable cache only means
// compiling, as without it.
//
// A script compiled from a cache has lost its import() callback (V8 serialises the host-defined options with the
// code: nodejs/node#43663; the cache of another process fails with ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING), so
// the code loaded here must not import(): cosmiconfig's loaders that do (JavaScript and TypeScript configuration
// files) are replaced by the host's own (packages/host/src/config.ts).
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import module, { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

/** The cache file of `file` for this Node: its version and architecture (`vendor.<hash>.cjs.v20.20.2-x64.v8cache`). */
export function cacheFileOf(file) {
  return join(dirname(file), `${basename(file)}.${process.version}-${process.arch}.v8cache`);
}

/** Evaluate the CommonJS file at `url` (once per call) and return its exports, compiled from the cache if it fits. */
export function requireVendor(url) {
  const file = fileURLToPath(url);
  if (typeof module.enableCompileCache === 'function') return createRequire(file)(file);
  const source = readFileSync(file, 'utf8');
  const cacheFile = cacheFileOf(file);
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    ...(cachedData === undefined ? {} : { cachedData }),
  });
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, createRequire(file), mod, file, dirname(file));
  if (cachedData === undefined || script.cachedDataRejected) {
    // after evaluation, so that what ran while loading is in it; written whole or not at all
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, script.createCachedData());
      renameSync(tmp, cacheFile);
    } catch {
      rmSync(tmp, { force: true });
    }
  }
  return mod.exports;
}
