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
// - The npm dependencies a start-up needs (VENDORS) are built apart, as CommonJS files beside the bundles
//   (dist/vendor*.<content hash>.cjs), which the bundles load through V8's code cache
//   (scripts/code-cache-runtime.mjs); the cache for this Node is written at the end (scripts/warm-code-cache.mjs).
import { execFileSync } from 'node:child_process';
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
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
 * Package directory -> vendor file name -> the npm modules in it, in the order they are to be evaluated
 * (reflect-metadata before tsyringe, which needs its polyfill). The host's CLI parser has a file of its own:
 * `--version` and `--help` load that one only. The rest (execa, cli-progress: for a subcommand, or for the first
 * run of a command) stays in the ESM bundles, loaded when used.
 */
const VENDORS = {
  'packages/plugin-sdk': { 'vendor.cjs': ['reflect-metadata', 'tsyringe', 'zod'] },
  'packages/host': {
    'vendor-cli.cjs': ['commander'],
    'vendor.cjs': ['cosmiconfig', 'pino', 'semver/functions/satisfies.js', 'semver/ranges/valid.js'],
  },
};
const RUNTIME = join(ROOT, 'scripts/code-cache-runtime.mjs');
const isIdentifier = (k) => /^[A-Za-z_$][\w$]*$/.test(k) && k !== 'default';

/**
 * esbuild escapes every non-ASCII character in strings, templates, regular expressions and names, but not in a
 * comment it keeps (one inside an expression): one em dash in zod's would make V8 hold the whole 600 KB source as
 * UTF-16. Such a character is replaced with `?`; one anywhere but in a `//` comment fails the build.
 */
function asciiOnly(file) {
  const lines = readFileSync(file, 'utf8').split('\n');
  for (const [i, line] of lines.entries()) {
    const at = line.search(/[^\p{ASCII}]/u);
    if (at < 0) continue;
    const comment = line.indexOf('//');
    if (comment < 0 || comment > at || /["'`]/.test(line.slice(0, comment)))
      throw new Error(`${file}:${i + 1}: a non-ASCII character outside a // comment`);
    lines[i] = line.slice(0, comment) + line.slice(comment).replace(/[^\p{ASCII}]/gu, '?');
  }
  writeFileSync(file, lines.join('\n'));
}

/**
 * Build a package's vendor files (VENDORS), and an esbuild plugin that makes the package's bundles take each of
 * those imports from them: a module per import that reads its vendor file's exports (loaded once, through the code
 * cache) and exports the same names. The names are the vendor file's own, read by loading it here. The vendor
 * files are minified (whitespace only: names stay): V8 keeps each source in memory for as long as the process runs.
 */
async function vendorPlugin(dist, groups, shared) {
  const files = [];
  /** Module -> [vendor file name, its exports]. */
  const owner = new Map();
  for (const [name, specs] of Object.entries(groups)) {
    const file = join(dist, name);
    await build({
      stdin: {
        contents: `module.exports = {\n${specs.map((m) => `  ${JSON.stringify(m)}: require(${JSON.stringify(m)}),`).join('\n')}\n};\n`,
        resolveDir: dist,
        loader: 'js',
      },
      outfile: file,
      ...shared,
      format: 'cjs',
      minifyWhitespace: true,
    });
    asciiOnly(file);
    // named by its content, so that a code cache made for one build is never taken for another's (V8 checks only
    // the source's length): vendor.cjs -> vendor.<12 hex digits of its SHA-256>.cjs
    const id = createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 12);
    const named = name.replace(/\.cjs$/, `.${id}.cjs`);
    renameSync(file, join(dist, named));
    const exportsOf = createRequire(import.meta.url)(join(dist, named));
    for (const m of specs) owner.set(m, [named, exportsOf[m]]);
    files.push(join(dist, named));
  }
  const escape = (m) => m.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const filter = new RegExp(`^(${[...owner.keys()].map(escape).join('|')})$`);
  return {
    files,
    plugin: {
      name: 'vendor',
      setup(b) {
        b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'vendor' }));
        b.onResolve({ filter: /^speakerd-vendor:/ }, (args) => ({ path: args.path, namespace: 'vendor-file' }));
        b.onLoad({ filter: /.*/, namespace: 'vendor-file' }, (args) => ({
          contents:
            `import { requireVendor } from ${JSON.stringify(RUNTIME)};\n` +
            `export const vendor = requireVendor(new URL(${JSON.stringify(`./${args.path.slice('speakerd-vendor:'.length)}`)}, import.meta.url));\n`,
          resolveDir: dist,
          loader: 'js',
        }));
        b.onLoad({ filter: /.*/, namespace: 'vendor' }, (args) => {
          const [name, m] = owner.get(args.path);
          const names = Object.keys(m).filter(isIdentifier);
          const dflt = m && m.__esModule ? 'm.default' : 'm.default ?? m';
          return {
            contents:
              `import { vendor } from 'speakerd-vendor:${name}';\nconst m = vendor[${JSON.stringify(args.path)}];\n` +
              `export default ${dflt};\n` +
              (names.length > 0 ? `export const { ${names.join(', ')} } = m;\n` : ''),
            resolveDir: dist,
            loader: 'js',
          };
        });
      },
    },
  };
}

/**
 * zod's `locales` namespace (`z.locales`) holds its error messages in 49 languages, 400 KB of the SDK bundle's
 * 900 (and non-Latin-1 text, which makes V8 keep the whole bundle's source as UTF-16). speakerd's messages are
 * English, and a plugin that switched zod's language would switch the host's too: the bundle keeps `en` only.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    // zod's ESM build (the bundles) and its CommonJS build (vendor.cjs)
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

const vendorFiles = [];
for (const [pkg, entries] of Object.entries(PACKAGES)) {
  const dist = join(ROOT, pkg, 'dist');
  for (const f of readdirSync(dist)) if (/^bundle-.*\.js$|\.bundle\.js$|^vendor.*\.cjs/.test(f)) rmSync(join(dist, f));
  const shared = {
    bundle: true,
    platform: 'node',
    target: 'node20',
    // vitest: the SDK's testing kit's optional peer; typescript: cosmiconfig's loader for .ts configs, on demand;
    // pino-pretty: loaded by the logger only on a terminal; js-yaml, parse-json (with @babel/code-frame) and
    // import-fresh: cosmiconfig requires each only for a file that needs it (YAML, JSON, CommonJS), 150 KB that a
    // start-up would compile for nothing if they were inlined (the host depends on them, so they resolve from it)
    external: ['@speakerd/*', 'vitest', 'typescript', 'pino-pretty', 'js-yaml', 'parse-json', 'import-fresh'],
    keepNames: true,
    logLevel: 'warning',
  };
  const plugins = [zodEnglishOnly];
  if (VENDORS[pkg]) {
    const vendor = await vendorPlugin(dist, VENDORS[pkg], { ...shared, plugins: [zodEnglishOnly] });
    vendorFiles.push(...vendor.files);
    plugins.unshift(vendor.plugin);
  }
  await build({
    ...shared,
    entryPoints: entries.map((e) => join(dist, e)),
    outdir: dist,
    entryNames: '[name].bundle',
    chunkNames: 'bundle-[hash]',
    splitting: true,
    format: 'esm',
    banner,
    plugins,
  });
}
// the code caches for this Node, with no flags (as a daemon runs)
execFileSync(process.execPath, [join(ROOT, 'scripts/warm-code-cache.mjs'), ...vendorFiles], { stdio: 'inherit' });
