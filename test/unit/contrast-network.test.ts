import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientScript, parseIperf, parseLdd, parseSockperf, serverScript, toolCommand } from '../../src/contrast/scenario-network.js';

test('parseLdd: libraries and the loader', () => {
  const p = parseLdd('\tlinux-vdso.so.1 (0x00007ffd)\n\tlibiperf.so.0 => /lib/x86_64-linux-gnu/libiperf.so.0 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n');
  assert.deepEqual(p, { libs: ['/lib/x86_64-linux-gnu/libiperf.so.0', '/lib/x86_64-linux-gnu/libc.so.6'], loader: '/lib64/ld-linux-x86-64.so.2' });
  assert.deepEqual(parseLdd('\tnot a dynamic executable\n'), { libs: [], loader: undefined });
});

test('parseSockperf: the median and p99 of the full round trip', () => {
  const out = `sockperf: Total 27749 observations; each percentile contains 277.49 observations
sockperf: ---> <MAX> observation =  999.926
sockperf: ---> percentile 99.999 =  999.926
sockperf: ---> percentile 99.000 =   41.516
sockperf: ---> percentile 90.000 =   33.649
sockperf: ---> percentile 50.000 =   26.383
sockperf: ---> <MIN> observation =    7.626`;
  assert.deepEqual(parseSockperf(out), { medianUs: 26.383, p99Us: 41.516, observations: 27749 });
  assert.throws(() => parseSockperf('sockperf: ERROR: connect: Connection refused'), /no percentiles: sockperf: ERROR/);
});

test('parseIperf: received throughput, or iperf3\'s own error', () => {
  assert.equal(parseIperf(JSON.stringify({ end: { sum_received: { bits_per_second: 2.5e9 } } })), 2500);
  assert.throws(() => parseIperf(JSON.stringify({ error: 'unable to connect to server: Connection refused' })), /iperf3: unable to connect/);
  assert.throws(() => parseIperf('garbage'), /no JSON/);
  assert.throws(() => parseIperf('{}'), /no received/);
});

test('scripts as data: tools through the copied loader; one one-off iperf3 server per port, then sockperf', () => {
  const ld = '/lib64/ld-linux-x86-64.so.2';
  assert.equal(toolCommand('iperf3', ld), '/hull-contrast-net/ld-linux-x86-64.so.2 --library-path /hull-contrast-net /hull-contrast-net/iperf3');
  const s = serverScript(ld, [5201, 5202]);
  assert.equal((s.match(/iperf3 -s -1 -p 520\d/g) ?? []).length, 2);
  assert.match(s.split('\n').pop()!, /^exec .*sockperf server --tcp -i 0\.0\.0\.0 -p 11111/);
  const c = clientScript(ld, '10.1.2.3', 5203, 2);
  assert.match(c, /sockperf ping-pong --tcp --full-rtt -i 10\.1\.2\.3 -p 11111 -t 2/);
  assert.match(c, /iperf3 -c 10\.1\.2\.3 -p 5203 -t 2 -J/);
});
