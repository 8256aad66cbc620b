// Builds the console's script into assets/console/console.js at the repository root
// (committed; the server embeds it beside the hand-written index.html and console.css there).
// The output depends only on the sources and the locked esbuild version, so CI can rebuild it
// and compare with what is committed.
import { build } from 'esbuild';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const out = fileURLToPath(new URL('../../../assets/console/', import.meta.url));
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [`${here}main.ts`],
  outfile: `${out}console.js`,
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2020',
  legalComments: 'none',
  logLevel: 'warning',
});
console.log(`built ${out}console.js`);
