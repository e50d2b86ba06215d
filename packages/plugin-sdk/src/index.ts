/**
 * @packageDocumentation
 * The contract between speakerd and its output backends. A backend package imports only this module.
 */
// the container too: the host builds its containers from this copy of tsyringe, the one plugins' decorators use
export { container, inject, injectable, singleton, type DependencyContainer } from './di.js';
export { z } from 'zod';

export * from './format.js';
export * from './options.js';
export * from './errors.js';
export * from './clock.js';
export * from './logger.js';
export * from './backend.js';
export * from './contract.js';
export * from './pacer.js';
export * from './tokens.js';
export * from './plugin.js';
export * from './services.js';
export * from './files.js';
export * from './addon.js';
export * from './lines.js';
export * from './output-state.js';
export * from './realtime.js';
export { SDK_VERSION } from './version.js';
export { sdkCopies } from './copies.js';
import { registerSdkCopy } from './copies.js';

registerSdkCopy(import.meta.url);
