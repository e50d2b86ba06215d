export * from './config.js';
export * from './config-schema.js';
export * from './plugins.js';
export * from './container.js';
export { VERSION } from './version.js';
