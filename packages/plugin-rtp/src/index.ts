import { definePlugin, packageInfo } from '@speakerd/plugin-sdk';
import { RtpBackend } from './backend.js';
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
  backend: RtpBackend,
});

export { options, RtpBackend };
export type { RtpOptions } from './options.js';
export { payloadFor, framesPerPacket, writeRtpHeader, type Payload } from './payload.js';
export { buildSdp, type SdpParams } from './sdp.js';
export { buildSap } from './sap.js';
export { rtcpIntervalMs } from './rtcp.js';
export {
  UdpTransport,
  udpTransport,
  classify,
  isMulticast,
  isBroadcast,
  type Transport,
  type TransportFactory,
  type Destination,
  type Delivery,
  type SendDone,
} from './transport.js';
