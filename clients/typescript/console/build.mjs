// Builds the console into ../../assets/console (committed; the server embeds it). The output
// depends only on the sources and the locked esbuild version, so CI can rebuild it and
// compare with what is committed.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
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
for (const file of ['index.html', 'console.css']) copyFileSync(`${here}${file}`, `${out}${file}`);
console.log(`console built into ${out}`);
