#!/usr/bin/env node
// Tolerant install step (see @speakerd/plugin-sdk/build-addon): npm install of speakerd never fails for want of a
// compiler; without the addon the rtp backend uses its JavaScript sender (same packets, more CPU) and says so.
// The addon needs only libc.
try {
  const { buildAddon } = await import('@speakerd/plugin-sdk/build-addon');
  buildAddon({
    packageName: '@speakerd/plugin-rtp',
    packageDir: new URL('..', import.meta.url),
    without: 'the rtp backend uses its JavaScript sender (more CPU)',
  });
} catch (err) {
  process.stderr.write(`@speakerd/plugin-rtp: the native addon was not built (${err.message}).\n`);
}
