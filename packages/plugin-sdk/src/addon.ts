import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

/** What {@link loadAddon} needs to know about one native addon. */
export interface AddonSpec<T> {
  /** The npm package that builds it: the advice names `npm rebuild <packageName>`. */
  packageName: string;
  /** The `.node` file (`build/Release/<target>.node` under the package, where node-gyp puts it). */
  path: string;
  /**
   * What an addon built from older sources (a stale build/ directory) would lack: return why it will not do
   * (`'it has no Stream.endFill'`), or undefined when it is the one this code needs.
   */
  check?: (addon: T) => string | undefined;
  /** Only on Linux (a real-time thread, ALSA): elsewhere the addon is not looked for. */
  linuxOnly?: boolean;
}

/**
 * A loaded addon, or why there is none: `why` is the whole message (`problem: fix`) a plugin's `unavailable()`
 * returns; `problem` and `fix` are its two halves for a tool that shows them apart (`speakerd doctor`). There is
 * no `fix` where nothing can be done (the addon is for another platform).
 */
export type AddonResult<T> =
  | { addon: T; why?: undefined; problem?: undefined; fix?: undefined }
  | { addon?: undefined; why: string; problem: string; fix?: string };

/** A result with no addon: `problem`, and what to do about it. */
export function addonProblem(problem: string, fix?: string): { why: string; problem: string; fix?: string } {
  return fix === undefined ? { why: problem, problem } : { why: `${problem}: ${fix}`, problem, fix };
}

/**
 * Load a plugin's node-addon-api addon with messages a user can act on: not built (install a compiler and
 * rebuild), not loadable (rebuild), out of date (rebuild), not for this platform. Never throws: a plugin reports
 * `why` from its `unavailable()` and speakerd goes on with the other backends. Cache the result yourself (the
 * built-ins keep one per process).
 */
export function loadAddon<T>(spec: AddonSpec<T>): AddonResult<T> {
  const rebuild = `run "npm rebuild ${spec.packageName}"`;
  if (spec.linuxOnly && process.platform !== 'linux')
    return addonProblem(`the native addon is for Linux only (this is ${process.platform})`);
  if (!existsSync(spec.path))
    return addonProblem(
      `the native addon is not built (${spec.path} is missing)`,
      `install a C++ compiler, make and python3 (apt-get install g++ make python3), then ${rebuild}`,
    );
  let addon: T;
  try {
    addon = createRequire(import.meta.url)(spec.path) as T;
  } catch (err) {
    return addonProblem(
      `the native addon cannot be loaded (${err instanceof Error ? err.message : String(err)})`,
      rebuild,
    );
  }
  let stale: string | undefined;
  try {
    stale = spec.check?.(addon);
  } catch (err) {
    stale = err instanceof Error ? err.message : String(err);
  }
  if (stale !== undefined) return addonProblem(`the native addon is out of date (${stale})`, rebuild);
  return { addon };
}
