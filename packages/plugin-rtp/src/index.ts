import { definePlugin, packageInfo } from '@speakerd/plugin-sdk';
import { options } from './options.js';

const pkg = packageInfo(import.meta.url);

export default definePlugin({
  manifest: {
    name: 'rtp',
    version: pkg.version,
    sdk: '^0.1.0',
    description: 'RTP/UDP (RFC 3550/3551) with SDP and RTCP',
  },
  options,
});

export { options };
export type { RtpOptions } from './options.js';
