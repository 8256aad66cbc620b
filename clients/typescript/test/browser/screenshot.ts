// Takes docs/console.png: the console on a fresh SQLite log fed with real Chainhook fixtures,
// one block rolled back. Run from clients/typescript after a build: npm run screenshot.
import { join } from 'node:path';
import { fixture, kill, launch, post, repoRoot, rollbackOf, sqliteDatabase, startServer } from './harness.js';

const db = sqliteDatabase();
const server = await startServer(db.url);
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  await page.goto(`${server.base}/console?since=0`);
  await page.locator('#state[data-state="connected"]').waitFor();
  for (const name of [
    '06_devnet_block_height_coinbase_stxmint_and_deploys.json',
    '04_devnet_print_event_decoded_value.json',
    '07_devnet_one_tx_three_stx_transfers.json',
    '05_devnet_stx_transfer_with_operations.json',
  ]) {
    await post(server.base, fixture(name));
  }
  const answer = await post(server.base, rollbackOf('05_devnet_stx_transfer_with_operations.json'));
  await page.locator('#head-seq', { hasText: String(answer['headSeq']) }).waitFor();
  await page.locator('#stream tbody tr.rollback').first().waitFor();
  const out = join(repoRoot, 'docs', 'console.png');
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await kill(server);
  db.drop();
}
