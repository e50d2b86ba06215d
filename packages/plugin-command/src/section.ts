import { options } from './options.js';

/**
 * What speakerd needs of this plugin while the configuration does not use it: its name, its line and the schema
 * its speakerrc section is checked with. The host imports this entry (`@speakerd/plugin-command/section`), not the
 * whole plugin, unless the configuration names the plugin.
 */
export const section = {
  name: 'command',
  description: 'raw PCM into the stdin of a shell command',
  options,
} as const;
