import { options } from './options.js';

/**
 * What speakerd needs of this plugin while the configuration does not use it: its name, its line and the schema
 * its speakerrc section is checked with. The host imports this entry (`@speakerd/plugin-rtp/section`), not the
 * whole plugin, unless the configuration names the plugin.
 */
export const section = {
  name: 'rtp',
  description: 'RTP/UDP (RFC 3550/3551) with SDP and RTCP',
  options,
} as const;
