import { definePlugin, packageInfo } from '@speakerd/plugin-sdk';
import { CommandBackend } from './backend.js';
import { options } from './options.js';

const pkg = packageInfo(import.meta.url);

export default definePlugin({
  manifest: {
    name: 'command',
    version: pkg.version,
    sdk: '^0.1.0',
    description: 'raw PCM into the stdin of a shell command',
  },
  options,
  backend: CommandBackend,
});

export { options, CommandBackend };
export { CONFIRM_AFTER_MS, MIN_STALL_MS, STABLE_AFTER_MS } from './backend.js';
export type { CommandOptions } from './options.js';
