#!/usr/bin/env node
// After `tsc -b`: bundle each package's entry points with its npm dependencies into a few files beside tsc's
// output (dist/*.bundle.js, dist/bundle-*.js), so starting speakerd reads a handful of modules instead of ~500
// (the ESM loader's per-module resolution, reads and compiles were most of the start-up time; docs/benchmarks.md).
//
// - `@speakerd/*` stay external: each package is bundled on its own, and every plugin, built in or not, imports
//   the one SDK bundle (the SDK carries zod, tsyringe and reflect-metadata: one container, one `z`).
// - The bundles sit in dist/ itself (chunks too), so `import.meta.url` sits as deep as in tsc's output: the paths
//   derived from it (package.json, build/Release/*.node) stay right.
// - `require()` for the CommonJS dependencies inlined in ESM output comes from createRequire (the banner).
// - tsc's per-file output stays: the types, the host's ./client entry, and the tests' deep imports use it.
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Package directory -> its entry points (tsc's output, relative to dist/). */
const PACKAGES = {
  'packages/plugin-sdk': ['index.js', 'testing.js'],
  'packages/host': ['main.js', 'index.js'],
  'packages/plugin-command': ['index.js', 'section.js'],
  'packages/plugin-rtp': ['index.js', 'section.js'],
  'packages/plugin-alsa': ['index.js', 'section.js'],
  'packages/plugin-snapcast': ['index.js', 'section.js'],
};
/**
 * zod's `locales` namespace (`z.locales`) holds its error messages in 49 languages, 400 KB of the SDK bundle's
 * 900 (and non-Latin-1 text, which makes V8 keep the whole bundle's source as UTF-16). speakerd's messages are
 * English, and a plugin that switched zod's language would switch the host's too: the bundle keeps `en` only.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    // zod's ESM build and its CommonJS build
    b.onResolve({ filter: /^\.\.\/locales\/index\.c?js$/ }, (args) =>
      /[\\/]zod[\\/]v4[\\/](classic|core)$/.test(args.resolveDir)
        ? {
            path: join(args.resolveDir, `../locales/en.${args.path.endsWith('.cjs') ? 'cjs' : 'js'}`),
            namespace: 'zod-en',
          }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-en' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(args.path)};`,
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
};
const banner = {
  js: "import { createRequire as __speakerdCreateRequire } from 'node:module'; const require = __speakerdCreateRequire(import.meta.url);",
};

for (const [pkg, entries] of Object.entries(PACKAGES)) {
  const dist = join(ROOT, pkg, 'dist');
  for (const f of readdirSync(dist)) if (/^bundle-.*\.js$|\.bundle\.js$/.test(f)) rmSync(join(dist, f));
  await build({
    entryPoints: entries.map((e) => join(dist, e)),
    outdir: dist,
    entryNames: '[name].bundle',
    chunkNames: 'bundle-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // vitest: the SDK's testing kit's optional peer; typescript: cosmiconfig's loader for .ts configs, on demand;
    // pino-pretty: loaded by the logger only on a terminal; js-yaml, parse-json (with @babel/code-frame) and
    // import-fresh: cosmiconfig requires each only for a file that needs it (YAML, JSON, CommonJS), 150 KB that a
    // start-up would compile for nothing if they were inlined (the host depends on them, so they resolve from it)
    external: ['@speakerd/*', 'vitest', 'typescript', 'pino-pretty', 'js-yaml', 'parse-json', 'import-fresh'],
    banner,
    keepNames: true,
    logLevel: 'warning',
    plugins: [zodEnglishOnly],
  });
}
