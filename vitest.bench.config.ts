import { defineConfig } from 'vitest/config';

/** Benchmarks that report figures (no timed assertions); run by `npm run bench`, never by `npm test`. */
export default defineConfig({
  ssr: { resolve: { conditions: ['@speakerd/source'] } },
  resolve: { conditions: ['@speakerd/source'] },
  test: { include: ['packages/*/bench/**/*.bench.test.ts'], pool: 'forks', testTimeout: 600_000 },
});
