/**
 * Every copy of this SDK that is loaded in the process registers itself here (a process-wide list, shared by all
 * copies through a global symbol). speakerd supplies its own SDK to every plugin it loads; a second copy — a plugin
 * that bundles the SDK, or imports it by a path — would have its own injection container, and its backend could not
 * be made. The host checks this list after importing each plugin and refuses such a plugin with a clear message.
 */
const KEY = Symbol.for('speakerd.plugin-sdk.copies');

type WithCopies = typeof globalThis & { [KEY]?: string[] };

/** Record a copy of the SDK by the URL of its entry module. */
export function registerSdkCopy(url: string): void {
  const g = globalThis as WithCopies;
  const list = (g[KEY] ??= []);
  if (!list.includes(url)) list.push(url);
}

/** The copies of the SDK loaded so far, by the URL of their entry module, in the order they were loaded. */
export function sdkCopies(): readonly string[] {
  return [...((globalThis as WithCopies)[KEY] ?? [])];
}
