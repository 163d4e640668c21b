// The benchmarks run every server they measure (ours, the floor, the bare baselines) as production
// runs the API: bundled to plain JavaScript the way `npm run build` bundles it (tsup, ESM, Node 20,
// dependencies left in node_modules), started with `node --enable-source-maps` (`npm run
// start:prod`). Under the tsx loader, which compiles with esbuild's keepNames, every named closure a
// request makes is wrapped in a `__name()` call that redefines its name: 8 % of the busy time of a
// broadcast to 10,000 long-polls in a CPU profile, a cost production's bundle does not have.
import { cpSync } from 'node:fs';
import { basename, isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';

const REPOSITORY_ROOT = fileURLToPath(new URL('../../', import.meta.url));
// Inside the repository, so that the bundles' imports of packages resolve to its node_modules.
const OUT_DIR = join(REPOSITORY_ROOT, 'node_modules', '.cache', 'punchclock-bench');

const bundles = new Map<string, Promise<string>>();

/** The bundle of `entry` (a .ts file; absolute, or relative to the repository's root), built once per process. */
export function compiledEntry(entry: string): Promise<string> {
  const source = isAbsolute(entry) ? entry : join(REPOSITORY_ROOT, entry);
  let bundle = bundles.get(source);
  if (!bundle) {
    bundle = bundleOf(source);
    bundles.set(source, bundle);
  }
  return bundle;
}

async function bundleOf(source: string): Promise<string> {
  const name = relative(REPOSITORY_ROOT, source).replace(/\.ts$/, '').replace(/[\\/]/g, '-');
  const outDir = join(OUT_DIR, name);
  await build({
    config: false,
    silent: true,
    entry: { [name]: source },
    outDir,
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    clean: true,
    skipNodeModulesBundle: true,
  });
  // Where db/open-database.ts looks for them: beside its module, which is the bundle now.
  cpSync(join(REPOSITORY_ROOT, 'db', 'migrations'), join(outDir, 'migrations'), { recursive: true });
  return join(outDir, `${basename(name)}.js`);
}
