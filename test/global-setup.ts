import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Runs once before all test files: make sure the binary the end-to-end tests spawn has been built. */
export default function setup(): void {
  const bin = fileURLToPath(new URL('../packages/host/dist/main.js', import.meta.url));
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run "npm run build" first (npm test does)`);
}
