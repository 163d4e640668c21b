import { cpSync } from 'node:fs';
import { defineConfig } from 'tsup';

// `npm run build`: the server as production runs it, plain JavaScript for `node dist/main.js` with
// no TypeScript loader in the process. This project's code is bundled (ESM, Node 20); its
// dependencies stay in node_modules as installed. The migrations are copied beside the bundle,
// where db/open-database.ts looks for them (next to its own module).
export default defineConfig({
  entry: { main: 'server/main.ts', cli: 'server/cli.ts', migrate: 'db/migrate.ts' },
  outDir: 'dist',
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  splitting: true,
  sourcemap: true,
  clean: true,
  skipNodeModulesBundle: true,
  async onSuccess() {
    cpSync('db/migrations', 'dist/migrations', { recursive: true });
  },
});
