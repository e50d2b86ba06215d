import { register } from 'node:module';

/** The SDK's entry points a plugin may import. */
const SDK_SPECIFIERS = ['@speakerd/plugin-sdk', '@speakerd/plugin-sdk/testing', '@speakerd/plugin-sdk/build-addon'];

let linked = false;

/**
 * Make every later import of `@speakerd/plugin-sdk` resolve to speakerd's own copy (sdk-hook.ts). Called before the
 * first plugin that is not built in is imported; built-in plugins resolve to it anyway, so a speakerd that uses only
 * them never starts the loader thread. Returns why it could not, or undefined.
 */
export function linkSdk(): string | undefined {
  if (linked) return undefined;
  linked = true;
  if (typeof register !== 'function') return 'this Node.js has no module.register()';
  const map: Record<string, string> = {};
  for (const s of SDK_SPECIFIERS) {
    try {
      map[s] = import.meta.resolve(s);
    } catch {
      // not exported by this SDK version: leave it to normal resolution
    }
  }
  try {
    register(new URL('./sdk-hook.js', import.meta.url), { data: { map } });
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  return undefined;
}
