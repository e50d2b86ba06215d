// @speakerd/host/client: drive speakerd from a music server.
export * from './client.js';
export type * from './protocol-types.js';
