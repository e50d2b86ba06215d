/**
 * A Node module resolve hook (registered with `module.register`, it runs on the loader thread): every import of
 * `@speakerd/plugin-sdk` (and its subpaths), from whatever module, resolves to the copy speakerd itself runs. So a
 * plugin installed anywhere uses speakerd's SDK — one injection container, one version check — whether or not a
 * copy of the SDK sits in its own node_modules. See sdk-link.ts.
 */
import type { InitializeHook, ResolveHook } from 'node:module';

let map: Readonly<Record<string, string>> = {};

export const initialize: InitializeHook<{ map: Record<string, string> }> = (data) => {
  map = data.map;
};

export const resolve: ResolveHook = (specifier, context, next) => {
  const url = map[specifier];
  if (url !== undefined) return { url, shortCircuit: true };
  return next(specifier, context);
};
