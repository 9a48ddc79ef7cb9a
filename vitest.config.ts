// Two test projects: `node` (everything under src/ and test/ except the Worker's own tests) and
// `workers` (test/worker/**, run inside workerd by @cloudflare/vitest-pool-workers, with a local
// D1 database migrated from migrations/ by test/worker/setup.ts). `npm test` runs both.
import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';

// Wrangler and miniflare stay offline and keep their state inside the repository (DEVELOPERS.md).
process.env.WRANGLER_SEND_METRICS ??= 'false';
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false';
process.env.WRANGLER_HIDE_BANNER ??= 'true';
process.env.XDG_CONFIG_HOME ??= new URL('./.wrangler/config', import.meta.url).pathname;

const migrationsDir = new URL('./migrations', import.meta.url).pathname;

export default defineConfig({
  test: {
    testTimeout: 20_000,
    hookTimeout: 20_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['test/worker/**', '**/node_modules/**'],
        },
      },
      {
        extends: true,
        plugins: [
          cloudflareTest(async () => ({
            miniflare: {
              compatibilityDate: '2026-05-01',
              d1Databases: ['DB'],
              bindings: { TEST_MIGRATIONS: await readD1Migrations(migrationsDir) },
            },
          })),
        ],
        test: {
          name: 'workers',
          include: ['test/worker/**/*.test.ts'],
          setupFiles: ['./test/worker/setup.ts'],
        },
      },
    ],
  },
});
