/**
 * @packageDocumentation
 * Test kit for backend authors: `import { describeBackend, createTestBackend, feed } from
 * '@speakerd/plugin-sdk/testing'`.
 * - The kit (kit.ts) builds a backend through a tsyringe child container with the same tokens and services the
 *   host registers, and feeds it the way the host does, so a test exercises the plugin as speakerd will run it.
 * - The conformance suite (conformance.ts, describe.ts) checks a backend against every rule of the contract.
 */
export * from './kit.js';
export * from './conformance.js';
export { describeBackend } from './describe.js';
