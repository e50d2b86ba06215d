#!/usr/bin/env node
// Tolerant install step (see @speakerd/plugin-sdk/build-addon): npm install of speakerd never fails for want of a
// compiler; choosing the `alsa` backend then gives SPEAKERD_ERR_BACKEND_UNAVAILABLE saying what is missing.
// The addon loads libasound.so.2 with dlopen at run time: libasound2-dev is not needed to build it.
try {
  const { buildAddon } = await import('@speakerd/plugin-sdk/build-addon');
  buildAddon({
    packageName: '@speakerd/plugin-alsa',
    packageDir: new URL('..', import.meta.url),
    without: 'the alsa backend is unavailable (other backends work as usual)',
  });
} catch (err) {
  process.stderr.write(`@speakerd/plugin-alsa: the native addon was not built (${err.message}).\n`);
}
