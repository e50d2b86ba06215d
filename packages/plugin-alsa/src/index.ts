import { definePlugin, packageInfo } from '@speakerd/plugin-sdk';
import { options } from './options.js';

const pkg = packageInfo(import.meta.url);

export default definePlugin({
  manifest: { name: 'alsa', version: pkg.version, sdk: '^0.1.0', description: 'a sound card through libasound' },
  options,
});

export { options };
export type { AlsaOptions } from './options.js';
