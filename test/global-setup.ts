import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Runs once before all test files: make sure the binary the end-to-end tests spawn has been built. */
export default function setup(): void {
  // libasound reads ALSA_CONFIG_PATH from the real process environment: set it here, before the test processes
  // (forks) and the speakerd binaries they spawn start. It adds the test PCMs (a `file` PCM over `null`, taking
  // the output path as its argument) to the system's alsa.conf.
  const alsaConf = fileURLToPath(new URL('./fixtures/alsa/asound.conf', import.meta.url));
  const alsaPath = process.env.ALSA_CONFIG_PATH || '/usr/share/alsa/alsa.conf';
  if (!alsaPath.split(':').includes(alsaConf)) process.env.ALSA_CONFIG_PATH = `${alsaPath}:${alsaConf}`;
  const bin = fileURLToPath(new URL('../packages/host/dist/main.bundle.js', import.meta.url));
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run "npm run build" first (npm test does)`);
}
