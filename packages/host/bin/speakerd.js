#!/usr/bin/env node
import module from 'node:module';

// Node >= 22.1 keeps V8's compiled code of the bundles between runs (most of what start-up still spends is
// compiling them); Node 20 has no such cache and skips this.
module.enableCompileCache?.();
const { main } = await import('../dist/main.bundle.js');

await main();
