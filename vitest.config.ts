import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Unit tests import workspace packages from their TypeScript source, never from a stale dist/.
  ssr: { resolve: { conditions: ['@speakerd/source'] } },
  resolve: { conditions: ['@speakerd/source'] },
  test: {
    include: ['test/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    // forks, not threads: libasound reads ALSA_CONFIG_PATH from the real process environment
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: ['default'],
  },
});
