import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** Run npm quietly in `cwd` (no audit, no funding notes): its stdout. */
export const npm = (args: string[], cwd: string): string =>
  execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8' });

/** `npm pack` into `dest`: the tarball's path (the last line it prints; a prepack script prints before it). */
export const pack = (pkgDir: string, dest: string): string =>
  join(dest, npm(['pack', '--pack-destination', dest], pkgDir).trim().split('\n').at(-1)!);
