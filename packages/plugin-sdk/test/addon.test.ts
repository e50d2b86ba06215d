import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAddon } from '../src/addon.js';

// Real files for each case: a .node file that is no shared object (what a truncated build leaves), and a CommonJS
// module standing in for a loaded addon (require() loads both the same way).
const dir = mkdtempSync(join(tmpdir(), 'speakerd-addon-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadAddon', () => {
  it('not built: says which file is missing, what to install and what to run', () => {
    const r = loadAddon({ packageName: 'speakerd-plugin-x', path: join(dir, 'build/Release/x.node') });
    expect(r.addon).toBeUndefined();
    expect(r.why).toMatch(
      /not built \(.*x\.node is missing\): install a C\+\+ compiler.*npm rebuild speakerd-plugin-x/,
    );
  });

  it('not loadable (a .node file that is no shared object): the loader error, and rebuild', () => {
    const bad = join(dir, 'bad.node');
    writeFileSync(bad, 'not an ELF file');
    const r = loadAddon({ packageName: 'speakerd-plugin-x', path: bad });
    expect(r.why).toMatch(/cannot be loaded \(.*\): run "npm rebuild speakerd-plugin-x"/);
  });

  it('out of date: what check() says (or throws), and rebuild; a good one is returned as loaded', () => {
    const mod = join(dir, 'mod.cjs');
    writeFileSync(mod, 'module.exports = { abi: 1 };');
    const old = loadAddon<{ abi: number }>({
      packageName: 'p',
      path: mod,
      check: (a) => (a.abi === 2 ? undefined : `abi ${a.abi}, not 2`),
    });
    expect(old.why).toBe('the native addon is out of date (abi 1, not 2): run "npm rebuild p"');
    // the two halves, for a tool that shows them apart
    expect(old.problem).toBe('the native addon is out of date (abi 1, not 2)');
    expect(old.fix).toBe('run "npm rebuild p"');
    const throwing = loadAddon<{ abi: number }>({
      packageName: 'p',
      path: mod,
      check: () => {
        throw new Error('no Stream');
      },
    });
    expect(throwing.why).toMatch(/out of date \(no Stream\)/);
    const good = loadAddon<{ abi: number }>({
      packageName: 'p',
      path: mod,
      check: (a) => (a.abi === 1 ? undefined : 'no'),
    });
    expect(good).toEqual({ addon: { abi: 1 } });
  });

  it('linuxOnly: elsewhere it is not looked for', () => {
    const platform = Object.getOwnPropertyDescriptor(process, 'platform')!;
    Object.defineProperty(process, 'platform', { value: 'darwin' });
    try {
      expect(loadAddon({ packageName: 'p', path: '/nowhere.node', linuxOnly: true })).toEqual({
        why: 'the native addon is for Linux only (this is darwin)',
        problem: 'the native addon is for Linux only (this is darwin)',
      });
    } finally {
      Object.defineProperty(process, 'platform', platform);
    }
  });
});
