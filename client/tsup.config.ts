import { defineConfig } from 'tsup';

// The package as published: ESM and CommonJS with their declarations and the contract bundled in,
// so that nothing is imported from outside the package but its two dependencies, zod and
// @ts-rest/core (eventsource-parser, small, is bundled too). The contract's OpenAPI annotations resolve to client/src/openapi-annotations.ts.
export default defineConfig({
  entry: { index: 'client/src/index.ts' },
  outDir: 'client/dist',
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  platform: 'neutral',
  external: ['zod', '@ts-rest/core'],
  // Bundled: the SSE parser is small, and the annotations are stubbed (see above).
  noExternal: ['@anatine/zod-openapi', 'eventsource-parser'],
  esbuildOptions(options) {
    options.alias = { '@anatine/zod-openapi': './client/src/openapi-annotations.ts' };
  },
  tsconfig: 'client/tsconfig.json',
});
