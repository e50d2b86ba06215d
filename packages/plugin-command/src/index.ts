import { definePlugin, packageInfo } from '@speakerd/plugin-sdk';
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
});

export { options };
export type { CommandOptions } from './options.js';
