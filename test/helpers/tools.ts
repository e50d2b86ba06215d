import { spawnSync } from 'node:child_process';

/** CI sets this so that a missing system tool fails the run instead of skipping tests. */
export const REQUIRE_TOOLS = process.env.SPEAKERD_REQUIRE_TOOLS === '1';

const cache = new Map<string, string | undefined>();

/**
 * Is a system tool usable? Returns true, or prints why not and returns false (the caller skips). Under
 * SPEAKERD_REQUIRE_TOOLS=1 a missing tool throws instead, so CI never passes by skipping.
 *
 * `probe` is the command that must succeed, e.g. ['ffmpeg', '-version'].
 */
export function haveTool(name: string, probe: string[] = [name, '--version']): boolean {
  if (!cache.has(name)) {
    const r = spawnSync(probe[0]!, probe.slice(1), { stdio: 'ignore', timeout: 10_000 });
    cache.set(name, r.error ? r.error.message : r.status === 0 ? undefined : `exit status ${r.status}`);
  }
  const why = cache.get(name);
  if (why === undefined) return true;
  const message = `${name} is not usable here (${probe.join(' ')}: ${why})`;
  if (REQUIRE_TOOLS) throw new Error(`${message}, and SPEAKERD_REQUIRE_TOOLS=1 requires it`);
  console.log(`skipped: ${message}`);
  return false;
}

/** Same as {@link haveTool} for a condition that is not a command (root, network namespaces, a library). */
export function haveCapability(name: string, available: boolean, why: string): boolean {
  if (available) return true;
  const message = `${name} is not available here (${why})`;
  if (REQUIRE_TOOLS) throw new Error(`${message}, and SPEAKERD_REQUIRE_TOOLS=1 requires it`);
  console.log(`skipped: ${message}`);
  return false;
}
