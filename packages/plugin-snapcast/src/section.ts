import { options } from './options.js';

/**
 * What speakerd needs of this plugin while the configuration does not use it: its name, its line and the schema
 * its speakerrc section is checked with. The host imports this entry (`@speakerd/plugin-snapcast/section`), not the
 * whole plugin, unless the configuration names the plugin.
 */
export const section = {
  name: 'snapcast',
  description: "feeds a Snapcast server's tcp or pipe stream (synchronised multi-room playback)",
  options,
} as const;
