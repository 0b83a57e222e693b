// SPDX-License-Identifier: Apache-2.0
// Opens the agent's page in Debian's headless chromium, waits until the service map shows the
// expected edges with a non-zero rate, opens a trace in the waterfall, takes a screenshot and
// prints one JSON object describing what the page showed (test_dashboard.py asserts on it).
//   node page_check.mjs URL SCREENSHOT [--edges a>b,b>c] [--min-nodes N] [--timeout-ms N]
//                       [--no-trace] [--width W] [--height H]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
const [url, screenshot] = args;
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const wantEdges = (opt('--edges', '') || '').split(',').filter(Boolean).map((p) => p.split('>'));
const minNodes = Number(opt('--min-nodes', '1'));
const timeout = Number(opt('--timeout-ms', '30000'));
const openTrace = !args.includes('--no-trace');
const width = Number(opt('--width', '1440'));
const height = Number(opt('--height', '1000'));

const result = { console_errors: [], page_errors: [], http_errors: [], failed_requests: [],
  nodes: [], edges: [], waterfall_rows: 0, trace_opened: null, attributes: {}, error: null };
const profile = mkdtempSync(join(tmpdir(), 'meshtrace-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width, height },
    deviceScaleFactor: 1,
  });
  const page = context.pages()[0] || await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') result.console_errors.push(m.text()); });
  page.on('pageerror', (e) => result.page_errors.push(String(e && e.stack || e)));
  page.on('requestfailed', (r) => result.failed_requests.push(`${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) result.http_errors.push(`${r.status()} ${r.url()}`); });

  await page.goto(url, { waitUntil: 'load', timeout });
  await page.waitForFunction(([edges, min]) => {
    const nodes = document.querySelectorAll('#map g.node');
    if (nodes.length < min) return false;
    return edges.every(([c, s]) => [...document.querySelectorAll('#map g.edge')].some((e) =>
      e.getAttribute('data-client') === c && e.getAttribute('data-server') === s &&
      Number(e.getAttribute('data-rate')) > 0));
  }, [wantEdges, minNodes], { timeout, polling: 250 });

  result.nodes = await page.$$eval('#map g.node', (els) => els.map((e) => {
    const r = e.querySelector('rect.box').getBoundingClientRect();
    return { id: e.getAttribute('data-id'), kind: e.getAttribute('data-kind'),
      text: e.textContent, box: [r.left, r.top, r.width, r.height] };
  }));
  result.edges = await page.$$eval('#map g.edge', (els) => els.map((e) => ({
    client: e.getAttribute('data-client'), server: e.getAttribute('data-server'),
    rate: Number(e.getAttribute('data-rate')), cls: e.getAttribute('class') })));
  result.services = await page.$$eval('#services tbody tr[data-service]', (els) =>
    els.map((e) => e.getAttribute('data-service')));
  result.health_text = await page.$eval('#health', (e) => e.textContent);

  if (openTrace) {
    // Among the slowest traces, the one with the most spans: the whole chain.
    await page.click('.tabs button[data-tab="slowest"]');
    await page.waitForSelector('#traces tr.trace-row', { timeout });
    const rows = await page.$$eval('#traces tr.trace-row', (els) => els.map((e) => ({
      id: e.getAttribute('data-trace-id'), spans: Number(e.cells[3].textContent) })));
    rows.sort((a, b) => b.spans - a.spans);
    result.trace_opened = rows[0].id;
    await page.click(`#traces tr.trace-row[data-trace-id="${rows[0].id}"]`);
    await page.waitForFunction(() => document.querySelectorAll('#waterfall .wf-row').length >= 2,
      null, { timeout });
    result.waterfall_rows = await page.$$eval('#waterfall .wf-row', (els) => els.length);
    result.waterfall = await page.$$eval('#waterfall .wf-row', (els) => els.map((e) =>
      e.querySelector('.wf-label').textContent));
    // The deepest span: its attributes appear in the detail table.
    const last = await page.$$('#waterfall .wf-row');
    await last[last.length - 1].click();
    await page.waitForSelector('#waterfall .wf-detail table', { timeout });
    result.attributes = await page.$$eval('#waterfall .wf-detail tr', (els) =>
      Object.fromEntries(els.map((e) => [e.cells[0].textContent, e.cells[1].textContent])));
  }
  // Let one more refresh run, so errors from the refresh loop are seen too.
  await page.waitForTimeout(2500);
  await page.screenshot({ path: screenshot, fullPage: true });
  result.page_bytes = await page.evaluate(() => performance.getEntriesByType('resource')
    .filter((e) => /\/ui\//.test(e.name)).reduce((a, e) => a + (e.decodedBodySize || 0), 0) +
    (performance.getEntriesByType('navigation')[0]?.decodedBodySize || 0));
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(result) + '\n');
