// tsyringe checks for the Reflect metadata polyfill when it loads, so the polyfill must load first. Every module
// of the SDK takes tsyringe from here, which keeps that order wherever a bundler puts the modules (esbuild's
// shared chunks evaluate the SDK's inner modules before an entry's own imports).
import 'reflect-metadata';

export { container, inject, injectable, singleton, type DependencyContainer } from 'tsyringe';
