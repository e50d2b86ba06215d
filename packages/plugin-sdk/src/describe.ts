/**
 * `describeBackend()`: the conformance suite as tests of the author's own runner. Vitest is found by importing it
 * (an optional peer dependency of the SDK); a runner with global `describe`/`it` (vitest with `globals`, jest,
 * mocha) works without it.
 */
import type { SpeakerdPlugin } from './plugin.js';
import { CONFORMANCE_RULES, RULE_TEXT, checkRule, type ConformanceOptions } from './conformance.js';

interface TestContext {
  skip?: (note?: string) => void;
}
interface TestApi {
  describe: (name: string, fn: () => void) => void;
  it: (name: string, fn: (ctx?: TestContext) => Promise<void>, timeout?: number) => void;
}

function globalApi(): TestApi | undefined {
  const g = globalThis as { describe?: unknown; it?: unknown };
  return typeof g.describe === 'function' && typeof g.it === 'function' ? (g as TestApi) : undefined;
}

const VITEST = 'vitest'; // by name, so that the SDK does not need vitest's types to build
const api: TestApi | undefined = globalApi() ?? ((await import(VITEST).catch(() => undefined)) as TestApi | undefined);

/**
 * Register the conformance suite for `plugin`'s backend: a `describe("<name> backend conformance")` with one test
 * per rule ({@link CONFORMANCE_RULES}); a failing test's message starts with the name of the rule broken. Call it
 * at the top level of a test file:
 *
 * ```ts
 * import { describeBackend } from '@speakerd/plugin-sdk/testing';
 * import plugin from '../src/index.js';
 * describeBackend(plugin, { options: { file: 'out.raw' } });
 * ```
 */
export function describeBackend(plugin: SpeakerdPlugin, opts: ConformanceOptions = {}): void {
  if (!api)
    throw new Error(
      'describeBackend() needs a test runner: install vitest (npm install --save-dev vitest), or use ' +
        'checkBackend() from your own runner',
    );
  const name = (plugin as Partial<SpeakerdPlugin> | undefined)?.manifest?.name ?? '(no manifest)';
  const timeout = (opts.timeoutMs ?? 15_000) + 5000;
  api.describe(`${name} backend conformance`, () => {
    for (const rule of CONFORMANCE_RULES)
      api.it(
        `${rule}: ${RULE_TEXT[rule]}`,
        async (ctx) => {
          const r = await checkRule(plugin, rule, opts);
          if (r.status === 'fail') throw new Error(r.message);
          if (r.status === 'skip') {
            if (ctx?.skip) ctx.skip(r.message);
            else console.log(`${name} ${rule}: skipped: ${r.message}`);
          }
        },
        timeout,
      );
  });
}
