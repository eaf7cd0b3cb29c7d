import { test } from 'node:test';
import assert from 'node:assert/strict';
import { completeBpf } from '../../src/runtime/container/index.js';

function insn(code: number, jt: number, jf: number, k: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(code, 0);
  b.writeUInt8(jt, 2);
  b.writeUInt8(jf, 3);
  b.writeUInt32LE(k, 4);
  return b;
}

// ld [0] (syscall nr); jeq #59, +1, +0; ret ALLOW; ret KILL
const program = Buffer.concat([insn(0x20, 0, 0, 0), insn(0x15, 1, 0, 59), insn(0x06, 0, 0, 0x7fff0000), insn(0x06, 0, 0, 0)]);

test('a whole seccomp program is accepted for the filter cache', () => {
  assert.equal(completeBpf(program), true);
});

test('no truncation of a filter is ever taken as whole', () => {
  for (let len = 0; len < program.length; len++) assert.equal(completeBpf(program.subarray(0, len)), false, `first ${len} bytes`);
  // ends with a return but a jump leads past the end: cut between the jump's targets
  const cut = Buffer.concat([insn(0x20, 0, 0, 0), insn(0x15, 2, 0, 59), insn(0x06, 0, 0, 0)]);
  assert.equal(completeBpf(cut), false);
});
