import assert from 'node:assert/strict';
import { test } from 'node:test';
import { median, percentile, ratio, summarize } from '../../src/contrast/stats.js';
import { parseCount, parseDuration, parsePeers, parseSize, parseWalls } from '../../src/contrast/units.js';
import { isHullError } from '../../src/errors.js';

test('median of odd and even counts, unsorted input', () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
});

test('nearest-rank percentile returns a measured value', () => {
  const s = Array.from({ length: 20 }, (_, i) => i + 1); // 1..20
  assert.equal(percentile(s, 95), 19);
  assert.equal(percentile(s, 100), 20);
  assert.equal(percentile(s, 50), 10);
  assert.equal(percentile([3, 1, 2], 95), 3);
  assert.equal(percentile([42], 95), 42);
});

test('summarize gives n, median, p95, min, max, mean', () => {
  const s = summarize([10, 30, 20, 40, 1000]);
  assert.deepEqual(s, { n: 5, median: 30, p95: 1000, min: 10, max: 1000, mean: 220 });
});

test('bad samples are refused with INVALID_ARGUMENT', () => {
  assert.throws(() => summarize([]), (e: unknown) => isHullError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => median([1, Number.NaN]), /not a finite number/);
  assert.throws(() => percentile([1], 0), /outside/);
  assert.throws(() => percentile([1], 101), /outside/);
});

test('ratio is null without both figures', () => {
  assert.equal(ratio(10, 5), 2);
  assert.equal(ratio(10, 0), null);
  assert.equal(ratio(null, 5), null);
  assert.equal(ratio(5, undefined), null);
});

test('flag values: sizes, durations, counts, walls, peers', () => {
  assert.equal(parseSize('128m', '--memory'), 128 * 1048576);
  assert.equal(parseSize('2g', '--x'), 2 * 1024 ** 3);
  assert.equal(parseSize('1.5G', '--x'), 1.5 * 1024 ** 3);
  assert.equal(parseSize('2GiB', '--x'), 2 * 1024 ** 3);
  assert.throws(() => parseSize('lots', '--memory-budget'), /lots.*--memory-budget/);
  assert.throws(() => parseSize('0', '--memory'), /--memory/);
  assert.equal(parseDuration('200ms', '--startup-budget'), 200);
  assert.equal(parseDuration('1.5s', '--startup-budget'), 1500);
  assert.equal(parseDuration('250', '--startup-budget'), 250);
  assert.throws(() => parseDuration('fast', '--startup-budget'), /--startup-budget/);
  assert.equal(parseCount('20', '--runs', 1, 100), 20);
  assert.throws(() => parseCount('0', '--runs', 1, 100), /between 1 and 100/);
  assert.throws(() => parseCount('2.5', '--runs', 1, 100), /whole number/);
  assert.deepEqual(parseWalls('container,vm,container'), ['container', 'vm']);
  assert.throws(() => parseWalls('lxc'), /"lxc".*--isolation/);
  assert.equal(parsePeers('auto'), undefined);
  assert.deepEqual(parsePeers('none'), []);
  assert.deepEqual(parsePeers('podman,crun'), ['podman', 'crun']);
  assert.throws(() => parsePeers('docker'), /docker.*--peers/);
});

test('lastLine skips hint lines and blanks', async () => {
  const { lastLine } = await import('../../src/contrast/spawn.js');
  assert.equal(lastLine('a\nhull: failed\nhint: do this\n\n'), 'hull: failed');
  assert.equal(lastLine(''), '');
});
