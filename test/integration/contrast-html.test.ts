/**
 * The HTML report of a real contrast loaded in a real headless browser (Debian's chromium,
 * driven by playwright-core): no console errors, no network request, every chart renders.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { hull, importBusybox, makeTempRoot, type TempRoot } from '../helpers/hull.js';
import { leftovers, vmUnavailable } from './contrast-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe('hull contrast --html in headless Chromium', { timeout: 900_000 }, () => {
  let tr: TempRoot;
  let dir: string;
  let walls = 'container';
  before(() => {
    tr = makeTempRoot('hullct-html-root-');
    importBusybox(tr.root);
    if (!vmUnavailable(tr.root)) walls = 'container,vm';
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hullct-html-'));
  });
  after(() => {
    tr.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('loads without console errors or network, and its SVG charts have a size', async (t) => {
    if (!fs.existsSync(CHROMIUM)) return t.skip(`${CHROMIUM} is not installed (apt-get install chromium)`);
    const html = path.join(dir, 'report.html');
    const r = hull(tr.root, ['contrast', 'busybox', '--runs', '2', '--density', '2', '--quick', '--idle-window', '2s', '--isolation', walls, '--peers', 'none', '--html', html], { timeoutMs: 600_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(leftovers(tr.root), []);

    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hullct-chromium-'));
    const ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
    try {
      const page = await ctx.newPage();
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('request', (q) => {
        if (!q.url().startsWith('file:')) requests.push(q.url());
      });
      await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });
      assert.deepEqual(errors, []);
      assert.deepEqual(requests, []);
      const charts = await page.$$eval('svg.chart', (els) =>
        els.map((e) => {
          const b = e.getBoundingClientRect();
          const marks = e.querySelectorAll('circle, rect, polyline').length;
          return { id: e.id, w: b.width, h: b.height, marks };
        }),
      );
      // one chart per dimension; boot modes only with the vm wall
      const want = ['chart-cpu', 'chart-density', 'chart-disk', 'chart-memory', 'chart-network', 'chart-startup', ...(walls.includes('vm') ? ['chart-boot'] : [])].sort();
      assert.deepEqual(charts.map((c) => c.id).sort(), want);
      for (const c of charts) {
        assert.ok(c.w > 100 && c.h > 50, `${c.id} has size ${c.w}x${c.h}`);
        assert.ok(c.marks > 0, `${c.id} draws marks`);
      }
      // the data marks themselves render with a size
      const dots = await page.$$eval('#chart-startup circle', (els) => els.map((e) => e.getBoundingClientRect().width));
      assert.equal(dots.length, 2 * walls.split(',').length);
      assert.ok(dots.every((w) => w > 0));
      const sentences = await page.$$eval('#summary li', (els) => els.length);
      assert.ok(sentences >= 3, `summary sentences: ${sentences}`);
      const isoRows = await page.$$eval('#isolation tr', (els) => els.length);
      assert.ok(isoRows > 5, `isolation table rows: ${isoRows}`);
    } finally {
      await ctx.close();
      fs.rmSync(profile, { recursive: true, force: true });
    }
  });
});
