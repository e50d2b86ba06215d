// scripts/code-cache-runtime.mjs: how the bundles load their npm dependencies (dist/vendor*.cjs) through V8's code
// cache. Each load runs in its own Node process, as a start-up of speakerd does: a cache is only worth anything
// across processes, and only there does V8 accept or reject it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import module from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO, tempDir } from './helpers/cli.js';

const RUNTIME = pathToFileURL(join(REPO, 'scripts/code-cache-runtime.mjs')).href;
// Node >= 22.1 has its own compile cache, and the runtime leaves the work to it
const NODE_CACHE = typeof (module as { enableCompileCache?: unknown }).enableCompileCache === 'function';

let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});

/** A CommonJS file big enough for V8 to compile lazily, and what it exports. */
function vendorFile(): { dir: string; file: string } {
  const t = tempDir('speakerd-code-cache-');
  cleanups.push(t.cleanup);
  const file = join(t.dir, 'vendor.cjs');
  const fns = Array.from({ length: 200 }, (_, i) => `function f${i}(x) { return x * ${i} + ${i % 7}; }`).join('\n');
  writeFileSync(file, `${fns}\nexports.answer = f6(7);\nexports.name = require('node:path').basename(__filename);\n`);
  return { dir: t.dir, file };
}

/**
 * Load `file` through the runtime in a fresh Node, as a start-up does: its exports (the names only, for a bundle
 * whose exports are functions) and the cache file's path.
 */
function load(file: string, namesOnly = false): { exports: Record<string, unknown>; cacheFile: string } {
  const code = `import(${JSON.stringify(RUNTIME)}).then((m) => {
    const loaded = m.requireVendor(${JSON.stringify(pathToFileURL(file).href)});
    const exports = ${namesOnly ? 'Object.fromEntries(Object.keys(loaded).map((k) => [k, typeof loaded[k]]))' : 'loaded'};
    process.stdout.write(JSON.stringify({ exports, cacheFile: m.cacheFileOf(${JSON.stringify(file)}) }));
  })`;
  return JSON.parse(execFileSync(process.execPath, ['-e', code], { encoding: 'utf8' })) as {
    exports: Record<string, unknown>;
    cacheFile: string;
  };
}

describe.skipIf(NODE_CACHE)('the vendor code cache (Node < 22.1, which has no compile cache of its own)', () => {
  it('the first load writes the cache beside the file, named by Node version and architecture; the next takes it', () => {
    const { dir, file } = vendorFile();
    const first = load(file);
    expect(first.exports).toEqual({ answer: 48, name: 'vendor.cjs' });
    expect(first.cacheFile).toBe(join(dir, `vendor.cjs.${process.version}-${process.arch}.v8cache`));
    const written = statSync(first.cacheFile);
    expect(written.size).toBeGreaterThan(0);
    // a cache V8 accepts is not written again: the file is the same one, untouched
    const second = load(file);
    expect(second.exports).toEqual(first.exports);
    const after = statSync(first.cacheFile);
    expect(after.mtimeMs).toBe(written.mtimeMs);
    expect(after.ino).toBe(written.ino);
    expect(readdirSync(dir).sort()).toEqual(['vendor.cjs', `vendor.cjs.${process.version}-${process.arch}.v8cache`]);
  });

  it('a corrupt cache is rejected, the code compiled as without one, and the cache written anew', () => {
    const { file } = vendorFile();
    const { cacheFile } = load(file);
    const good = readFileSync(cacheFile);
    writeFileSync(cacheFile, Buffer.from('not a V8 code cache, or one for other code'));
    expect(load(file).exports).toEqual({ answer: 48, name: 'vendor.cjs' });
    const rewritten = readFileSync(cacheFile);
    expect(rewritten.length).toBe(good.length);
    // and the rewritten one is accepted in turn
    const before = statSync(cacheFile).mtimeMs;
    load(file);
    expect(statSync(cacheFile).mtimeMs).toBe(before);
  });

  it('a cache made for another version of the file (of another length) is rejected and replaced', () => {
    const { file } = vendorFile();
    const { cacheFile } = load(file);
    const old = readFileSync(cacheFile);
    writeFileSync(file, `${readFileSync(file, 'utf8')}exports.more = f1(1);\n`);
    expect(load(file).exports).toEqual({ answer: 48, name: 'vendor.cjs', more: 2 });
    expect(Buffer.compare(readFileSync(cacheFile), old)).not.toBe(0);
  });

  it('where the cache cannot be written, the file loads all the same and leaves nothing behind', () => {
    const { dir, file } = vendorFile();
    // a directory where the cache would go: neither read nor replaced, even by root
    const cacheFile = join(dir, `vendor.cjs.${process.version}-${process.arch}.v8cache`);
    mkdirSync(cacheFile);
    expect(load(file).exports).toEqual({ answer: 48, name: 'vendor.cjs' });
    expect(load(file).exports).toEqual({ answer: 48, name: 'vendor.cjs' });
    expect(statSync(cacheFile).isDirectory()).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['vendor.cjs', `vendor.cjs.${process.version}-${process.arch}.v8cache`]);
  });
});

describe('the built bundles', () => {
  it('carry a cache for the Node that built them, which that Node accepts; one vendor file per group', () => {
    for (const pkg of ['plugin-sdk', 'host']) {
      const dist = join(REPO, 'packages', pkg, 'dist');
      // named by their content (V8 compares only a source's length with its cache's)
      const vendors = readdirSync(dist).filter((f) => /^vendor(-[a-z]+)?\.[0-9a-f]{12}\.cjs$/.test(f));
      expect(vendors.length, vendors.join(' ')).toBe(pkg === 'host' ? 2 : 1);
      for (const v of vendors) {
        const cacheFile = join(dist, `${v}.${process.version}-${process.arch}.v8cache`);
        expect(existsSync(cacheFile), cacheFile).toBe(!NODE_CACHE);
        if (NODE_CACHE) continue;
        const before = statSync(cacheFile).mtimeMs;
        expect(Object.keys(load(join(dist, v), true).exports).length).toBeGreaterThan(0);
        expect(statSync(cacheFile).mtimeMs, `${v} was compiled again`).toBe(before);
      }
    }
  });

  it("the SDK's zod speaks English only (its other locales are left out of the bundle)", async () => {
    const code = `import('@speakerd/plugin-sdk').then(({ z }) => process.stdout.write(JSON.stringify(Object.keys(z.locales))))`;
    expect(JSON.parse(execFileSync(process.execPath, ['-e', code], { cwd: REPO, encoding: 'utf8' }))).toEqual(['en']);
  });
});
