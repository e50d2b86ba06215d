/**
 * speakerd-plugin-recorder: a speakerd backend that records each playing session to a WAV file. Written against
 * @speakerd/plugin-sdk alone, as any third-party plugin is.
 */
import { definePlugin, packageInfo } from '@speakerd/plugin-sdk';
import { recorderOptions } from './options.js';
import { RecorderBackend } from './recorder.js';

const pkg = packageInfo(import.meta.url);

export default definePlugin({
  manifest: {
    name: 'recorder',
    version: pkg.version,
    sdk: '^0.1.0',
    description: 'records each playing session to a WAV file',
  },
  options: recorderOptions,
  backend: RecorderBackend,
});

export { RecorderBackend } from './recorder.js';
export { recorderOptions, type RecorderOptions } from './options.js';
export { wavHeader, wavEncodingFor } from './wav.js';
