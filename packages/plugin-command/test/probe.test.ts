import { describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import plugin, { options, probeShell, SHELL } from '../src/index.js';

const context = { configDir: tmpdir(), pluginName: 'command', hostVersion: '0.0.0' };

describe('command probe', () => {
  it('resolves undefined where /bin/sh can run, whatever the command (it is not run)', async () => {
    expect(SHELL).toBe('/bin/sh');
    expect(await plugin.probe!(options.parse({}), context)).toBeUndefined();
    const marker = join(tmpdir(), `speakerd-probe-not-run-${process.pid}`);
    expect(await plugin.probe!(options.parse({ run: `touch ${marker}` }), context)).toBeUndefined();
    expect(() => rmSync(marker)).toThrow(); // never created: the probe runs nothing
  });

  it('says what is wrong with the shell, and what to do, in one line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'speakerd-command-probe-'));
    try {
      expect(await probeShell(join(dir, 'sh'))).toBe(
        `${join(dir, 'sh')} does not exist: the command backend runs "command.run" with it; install a POSIX shell (e.g. apt-get install dash)`,
      );
      const notExec = join(dir, 'not-exec');
      writeFileSync(notExec, '#!/bin/sh\n');
      chmodSync(notExec, 0o644);
      // root may execute nothing without an x bit either: access(X_OK) fails for every user
      expect(await probeShell(notExec)).toMatch(/not-exec is not executable: /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
