import { readFileSync } from 'node:fs';

/**
 * speakerd's version, from the host package's package.json (one level above src/ and dist/). Read directly, not
 * through the SDK's packageInfo: `speakerd --version` and `--help` load nothing but this, commander and the CLI's
 * definition (the SDK alone costs ~100 ms of module loading).
 */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
