import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyConfigInstr, parseDuration, varsOf, type StageState } from '../../src/build/config-steps.js';
import { joinContinuations, parseDockerfile } from '../../src/build/dockerfile.js';
import { expandWord, expandWords, varsUsed } from '../../src/build/expand.js';
import { planBuild } from '../../src/build/plan.js';

const V = new Map([['A', 'one'], ['E', ''], ['P', '/usr']]);

test('expand: docker word rules (quotes, escapes, ${VAR:-x}, ${VAR:+x}, unset)', () => {
  assert.equal(expandWord('$A', V), 'one');
  assert.equal(expandWord('${A}x', V), 'onex');
  assert.equal(expandWord("'$A'", V), '$A');
  assert.equal(expandWord('"$A b"', V), 'one b');
  assert.equal(expandWord('\\$A', V), '$A');
  assert.equal(expandWord('${MISSING:-dflt}', V), 'dflt');
  assert.equal(expandWord('${E:-dflt}', V), 'dflt');
  assert.equal(expandWord('${E-dflt}', V), '');
  assert.equal(expandWord('${A:+set}', V), 'set');
  assert.equal(expandWord('${MISSING:+set}', V), '');
  assert.equal(expandWord('${MISSING:-$P/bin}', V), '/usr/bin');
  assert.equal(expandWord('$MISSING', V), '');
  assert.equal(expandWord('a$', V), 'a$');
  assert.equal(expandWord('`$A', V, { escape: '`' }), '$A');
  assert.throws(() => expandWord('${MISSING:?needs it}', V), /MISSING: needs it/);
  assert.throws(() => expandWord('"open', V), /matching double-quote/);
  assert.deepEqual(expandWords('a "b c"  $A', V), ['a', 'b c', 'one']);
  assert.deepEqual([...varsUsed('${X:-$Y} $Z')].sort(), ['X', 'Y', 'Z']);
});

test('dockerfile: continuations, comments inside them, exec form, heredocs, escape directive, ONBUILD', () => {
  assert.equal(joinContinuations('echo a \\\n  # note\n\n  && echo b', '\\'), 'echo a   && echo b');
  const df = parseDockerfile([
    '# escape=`',
    'FROM busybox AS b',
    'RUN echo a `',
    '  && echo b',
    'CMD ["sh", "-c", "echo  two"]',
    'COPY --chown=1:2 --from=x a b /d/',
    'RUN <<EOF',
    'echo hi',
    'EOF',
    'ONBUILD RUN echo trig',
    'ENV K="v w" L=x',
    '',
  ].join('\n'));
  assert.equal(df.escape, '`');
  const [from, run, cmd, copy, hd, onb, env] = df.instrs;
  assert.deepEqual([from!.keyword, from!.line, from!.words], ['FROM', 2, ['busybox', 'AS', 'b']]);
  assert.equal(run!.args, 'echo a   && echo b');
  assert.deepEqual(cmd!.json, ['sh', '-c', 'echo  two']);
  assert.deepEqual(copy!.flags, [{ name: 'chown', value: '1:2' }, { name: 'from', value: 'x' }]);
  assert.deepEqual(copy!.words, ['a', 'b', '/d/']);
  assert.equal(copy!.args, 'a b /d/');
  assert.deepEqual(hd!.heredocs, [{ name: 'EOF', content: 'echo hi\n', expand: true }]);
  assert.equal(hd!.args, '<<EOF');
  assert.equal(onb!.trigger?.keyword, 'RUN');
  assert.equal(onb!.trigger?.text, 'RUN echo trig');
  assert.deepEqual(env!.props, [{ name: 'K', raw: '"v w"' }, { name: 'L', raw: 'x' }]);
});

test('plan: global ARGs in FROM, stages by name, --target, unneeded stages skipped, errors name the line', () => {
  const df = parseDockerfile('ARG V=1\nARG BASE=busy\nFROM ${BASE}box:$V AS one\nRUN a\nFROM scratch AS unused\nFROM one AS two\nCOPY --from=0 /x /y\nFROM two\n');
  const p = planBuild(df, { buildArgs: new Map([['V', '2']]) });
  assert.deepEqual(p.all[0]!.base, { kind: 'image', ref: 'busybox:2' });
  assert.deepEqual(p.all[2]!.base, { kind: 'stage', index: 0 });
  assert.deepEqual(p.stages.map((s) => s.index), [0, 2, 3]);
  assert.equal(p.totalSteps, 2 + 2 + 1);
  const t = planBuild(df, { target: 'unused' });
  assert.deepEqual(t.stages.map((s) => s.index), [1]);
  assert.throws(() => planBuild(df, { target: 'nope' }), /failed to reach build target nope/);
  assert.throws(() => planBuild(parseDockerfile('FROM busybox\nBOGUS x\n')), /Dockerfile line 2: unknown instruction: BOGUS/);
  assert.throws(() => planBuild(parseDockerfile('RUN x\nFROM busybox\n')), /Dockerfile line 1: no build stage/);
  assert.throws(() => planBuild(parseDockerfile('FROM busybox\nONBUILD FROM x\n')), /line 2: FROM isn't allowed as an ONBUILD trigger/);
  assert.throws(() => planBuild(parseDockerfile('# just a comment\n')), /no FROM/);
});

function state(): StageState {
  return { config: { Env: ['PATH=/bin'], Cmd: ['sh'] }, args: new Map(), declared: new Set(), escape: '\\', cmdSet: false };
}

test('config steps: ENV/ARG scoping, LABEL, EXPOSE ranges, HEALTHCHECK, SHELL, CMD/ENTRYPOINT rules', () => {
  const s = state();
  const run = (text: string, args = new Map<string, string>()) => applyConfigInstr(s, parseDockerfile(`FROM x\n${text}\n`).instrs[1]!, args);
  run('ARG WHO=world', new Map());
  assert.equal(varsOf(s).get('WHO'), 'world');
  run('ARG OVER=dflt', new Map([['OVER', 'given']]));
  assert.equal(s.args.get('OVER'), 'given');
  assert.match(run('ENV GREETING="hello $WHO" X=${WHO:+yes}'), /#\(nop\)  ENV GREETING=hello world X=yes$/);
  assert.ok(s.config.Env!.includes('GREETING=hello world'));
  run('ENV WHO=env');
  assert.equal(varsOf(s).get('WHO'), 'env', 'ENV wins over ARG');
  run('LABEL "a b"=c d=$WHO');
  assert.deepEqual(s.config.Labels, { 'a b': 'c', d: 'env' });
  run('EXPOSE 80 53/udp 8000-8001');
  assert.deepEqual(Object.keys(s.config.ExposedPorts!), ['80/tcp', '53/udp', '8000/tcp', '8001/tcp']);
  run('HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost');
  assert.deepEqual(s.config.Healthcheck, { Test: ['CMD-SHELL', 'wget -q localhost'], Interval: 5e9, Retries: 2 });
  run('SHELL ["/bin/ash", "-eo", "pipefail", "-c"]');
  run('ENTRYPOINT echo hi');
  assert.deepEqual(s.config.Entrypoint, ['/bin/ash', '-eo', 'pipefail', '-c', 'echo hi']);
  assert.equal(s.config.Cmd, null, 'ENTRYPOINT clears an inherited CMD');
  run('CMD ["x"]');
  run('ENTRYPOINT ["y"]');
  assert.deepEqual(s.config.Cmd, ['x'], 'but not one set in this stage');
  run('VOLUME /data /logs');
  assert.deepEqual(Object.keys(s.config.Volumes!), ['/data', '/logs']);
  run('USER $WHO');
  assert.equal(s.config.User, 'env');
  run('STOPSIGNAL SIGQUIT');
  assert.equal(s.config.StopSignal, 'SIGQUIT');
  run('ONBUILD RUN echo later');
  assert.deepEqual(s.config.OnBuild, ['RUN echo later']);
  assert.throws(() => run('EXPOSE 99999'), /line 2: EXPOSE: invalid port range/);
  assert.throws(() => run('SHELL /bin/bash'), /line 2: SHELL requires the arguments to be in JSON form/);
  assert.equal(parseDuration('1m30s', 1, 'interval'), 90e9);
});
