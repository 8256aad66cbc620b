// The package's size as an application ships it: each entry point bundled with everything it
// exports (no tree-shaking of unused exports), minified by esbuild, then gzipped (level 9).
// Reads dist/ (run `npm run build` first). React is the application's, so it is not counted.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;

async function measure(...entries) {
  const result = await build({
    stdin: { contents: entries.map((e) => `export * from './${e}';`).join('\n'), resolveDir: dist },
    bundle: true,
    minify: true,
    write: false,
    format: 'esm',
    target: 'es2022',
    external: ['react', 'react-dom'],
    legalComments: 'none',
    logLevel: 'warning',
  });
  const code = result.outputFiles[0].contents;
  return { min: code.length, gz: gzipSync(code, { level: 9 }).length };
}

const rows = [
  ['core (`@timebank/realtime`)', await measure('index.js')],
  ['React hooks alone (`/react`)', await measure('react.js')],
  ['core + React hooks', await measure('index.js', 'react.js')],
];
const consoleJs = readFileSync(fileURLToPath(new URL('../../../assets/console/console.js', import.meta.url)));
rows.push(['console page script (`assets/console/console.js`)', { min: consoleJs.length, gz: gzipSync(consoleJs, { level: 9 }).length }]);
console.log('| bundle | minified | minified + gzipped |');
console.log('|---|---:|---:|');
for (const [name, s] of rows) console.log(`| ${name} | ${kb(s.min)} | ${kb(s.gz)} |`);
