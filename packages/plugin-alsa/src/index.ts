import { definePlugin, packageInfo } from '@speakerd/plugin-sdk';
import { AlsaBackend } from './backend.js';
import { loadBinding } from './binding.js';
import { options } from './options.js';
import { section } from './section.js';
import { probe } from './probe.js';

const pkg = packageInfo(import.meta.url);

export default definePlugin({
  manifest: { name: section.name, version: pkg.version, sdk: '^0.1.0', description: section.description },
  options,
  backend: AlsaBackend,
  /** The addon was not built, or libasound.so.2 is not installed: says which, and how to get it. */
  unavailable: () => loadBinding().why,
  /** The configured device opens now (on the addon's own thread, within two seconds); else why not and what to do. */
  probe: (opts) => probe(opts),
});

export { options };
export type { AlsaOptions } from './options.js';
export { AlsaBackend, ALSA_ERR_FORMAT, ALSA_ERR_MIXER, TEST_HOOKS_ENV, errnoNumber, mixerCard } from './backend.js';
export { ALSA_FORMATS } from './formats.js';
export {
  ADDON_PATH,
  NativeErrorCodes,
  TEST_ADDON_PATH,
  loadBinding,
  loadTestBinding,
  type Binding,
  type FaultSpec,
  type ProbeResult,
  type TestBinding,
} from './binding.js';
export { PROBE_TIMEOUT_MS, probeDevice, withAdvice } from './probe.js';
