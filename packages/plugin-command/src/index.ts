import { access, constants } from 'node:fs/promises';
import { definePlugin, packageInfo } from '@speakerd/plugin-sdk';
import { CommandBackend } from './backend.js';
import { options } from './options.js';
import { section } from './section.js';

const pkg = packageInfo(import.meta.url);

export default definePlugin({
  manifest: {
    name: section.name,
    version: pkg.version,
    sdk: '^0.1.0',
    description: section.description,
  },
  options,
  backend: CommandBackend,
  probe: () => probeShell(),
});

/** The shell the command is run with. */
export const SHELL = '/bin/sh';

/**
 * The command backend can play when the shell can run: `/bin/sh` exists and is executable. Nothing more is
 * checked: whether the configured command itself works is only known by running it, and running it could make a
 * sound (the SDK's probe makes none).
 */
export async function probeShell(shell: string = SHELL): Promise<string | undefined> {
  try {
    await access(shell, constants.X_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not executable' : String(code);
    return `${shell} ${what}: the command backend runs "command.run" with it; install a POSIX shell (e.g. apt-get install dash)`;
  }
}

export { options, CommandBackend };
export { CONFIRM_AFTER_MS, MIN_STALL_MS, STABLE_AFTER_MS } from './supervisor.js';
export type { CommandOptions } from './options.js';
