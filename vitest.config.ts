import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs neither root nor built probes and runs files in parallel; `e2e` builds real
// namespaces as root. `npm test` (bin/test.js) runs only `unit` for a user without root.
export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['harness/**/*.test.ts'],
          exclude: ['harness/**/*.e2e.test.ts'],
          // Generous only because up to eight test runs share two cores here; speed goals live in `npm run bench`.
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['harness/**/*.e2e.test.ts'],
          // The files share one kernel (conntrack, nft, namespaces): one file at a time, after `unit` is done.
          poolOptions: { forks: { singleFork: true } },
          sequence: { groupOrder: 1 },
          testTimeout: 180_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
