/**
 * The Engine API's networking through the real docker 28 CLI and dockerode against `hull serve`:
 * docker run -p / -P, docker port, docker network create/ls/inspect/connect/disconnect/rm/prune,
 * NetworkSettings and EndpointsConfig as docker shapes them (the short id in Aliases, which
 * docker-compose checks), PortBindings, PublishAllPorts, ExposedPorts; nothing left after.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Docker from 'dockerode';
import { importBusybox, makeTempRoot, processesMentioning, type TempRoot } from '../helpers/hull.js';
import { assertNoNetwork, freePort, httpdScript, httpGet, WAIT_SERVING, withFreeSubnet } from '../helpers/net.js';
import { docker, haveDocker, monitorsOf, removeAll, startServe, type Serve } from './api-harness.js';

const missing = haveDocker() ? '' : 'the docker CLI is not installed';
let tr: TempRoot;
let s: Serve;
let d: Docker;
const dk = (...a: string[]) => {
  const r = docker(s, a);
  assert.equal(r.code, 0, `docker ${a.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

before(async () => {
  tr = makeTempRoot('hull-netapi-');
  importBusybox(tr.root);
  s = await startServe(tr.root);
  d = new Docker({ socketPath: s.socket });
});

after(async () => {
  if (s) {
    removeAll(s);
    for (const n of await d.listNetworks()) if (!['bridge', 'host', 'none'].includes(n.Name)) await d.getNetwork(n.Id).remove();
    await s.stop();
  }
  if (!tr) return;
  assert.deepEqual(monitorsOf(tr.root), []);
  await assertNoNetwork(tr.root, { idle: true });
  for (let i = 0; i < 100 && processesMentioning(tr.root).length; i++) await new Promise((r) => setTimeout(r, 100));
  tr.cleanup();
});

test('docker run -p, -P and docker port; inspect as docker shapes it', async (t) => {
  if (missing) return t.skip(missing);
  const port = await freePort();
  const id = dk('run', '-d', '--name', 'pub', '-p', `127.0.0.1:${port}:80`, '--expose', '81', '-P', 'busybox', 'sh', '-c', `httpd -p 81 -h /tmp; ${httpdScript('via-docker')}`);
  assert.equal((await httpGet('127.0.0.1', port)).trim(), 'via-docker');
  const ports = dk('port', 'pub').split('\n');
  assert.ok(ports.includes(`80/tcp -> 127.0.0.1:${port}`), ports.join('|'));
  assert.ok(ports.some((l) => /^81\/tcp -> 0\.0\.0\.0:\d+$/.test(l)), ports.join('|'));
  assert.equal(dk('port', 'pub', '80'), `127.0.0.1:${port}`);
  const i = await d.getContainer(id).inspect();
  assert.deepEqual(i.HostConfig.PortBindings, { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] });
  assert.equal(i.HostConfig.PublishAllPorts, true);
  assert.ok('81/tcp' in (i.Config.ExposedPorts ?? {}) && '80/tcp' in (i.Config.ExposedPorts ?? {}));
  assert.equal(i.HostConfig.NetworkMode, 'bridge');
  assert.match(i.NetworkSettings.Networks.bridge!.IPAddress, /^10\.21[45]\./);
  const listed = (await d.listContainers()).find((c) => c.Id === id)!;
  assert.ok(listed.Ports.some((p) => p.PrivatePort === 80 && p.PublicPort === port && p.IP === '127.0.0.1' && p.Type === 'tcp'));
  assert.equal(listed.HostConfig.NetworkMode, 'bridge');
  assert.match(docker(s, ['run', '--rm', '-p', `127.0.0.1:${port}:80`, 'busybox', 'true']).stderr, /port is already allocated/);
  dk('rm', '-f', 'pub');
});

test('docker network create/ls/inspect/connect/disconnect/rm/prune; names on a user network; the short id in Aliases', async (t) => {
  if (missing) return t.skip(missing);
  const { octet, result } = withFreeSubnet((o) => docker(s, ['network', 'create', '--subnet', `10.216.${o}.0/24`, '--label', 'app=demo', 'appnet']));
  assert.equal(result.code, 0, result.stderr);
  const nid = result.stdout.trim();
  assert.match(nid, /^[0-9a-f]{64}$/);
  assert.ok(dk('network', 'ls', '--format', '{{.Name}}').split('\n').includes('appnet'));
  const ni = JSON.parse(dk('network', 'inspect', 'appnet'))[0];
  assert.deepEqual(ni.IPAM.Config, [{ Subnet: `10.216.${octet}.0/24`, Gateway: `10.216.${octet}.1` }]);
  assert.deepEqual(ni.Labels, { app: 'demo' });
  assert.equal(ni.Driver, 'bridge');
  const id = dk('run', '-d', '--name', 'svc', '--network', 'appnet', '--network-alias', 'service', 'busybox', 'sh', '-c', httpdScript('svc-answers'));
  dk('exec', 'svc', ...WAIT_SERVING);
  const i = await d.getContainer(id).inspect();
  const ep = i.NetworkSettings.Networks.appnet!;
  assert.ok(ep.Aliases!.includes('service') && ep.Aliases!.includes(id.slice(0, 12)), JSON.stringify(ep.Aliases));
  assert.equal(ep.NetworkID, nid);
  assert.ok(ep.IPAddress.startsWith(`10.216.${octet}.`), ep.IPAddress);
  assert.equal(dk('run', '--rm', '--network', 'appnet', 'busybox', 'sh', '-c', 'timeout 10 wget -q -O- http://service/'), 'svc-answers');
  // dockerode: a container created with EndpointsConfig, connected to a second network, then disconnected
  const c = await d.createContainer({ Image: 'busybox', Cmd: ['sleep', '300'], HostConfig: { NetworkMode: 'appnet' }, NetworkingConfig: { EndpointsConfig: { appnet: { Aliases: ['worker'] } } } });
  await c.start();
  assert.equal(dk('run', '--rm', '--network', 'appnet', 'busybox', 'sh', '-c', 'nslookup worker >/dev/null && echo found'), 'found');
  await d.getNetwork('bridge').connect({ Container: c.id });
  assert.deepEqual(Object.keys((await c.inspect()).NetworkSettings.Networks).sort(), ['appnet', 'bridge']);
  assert.ok(Object.keys((await d.getNetwork('appnet').inspect()).Containers ?? {}).includes(c.id));
  await d.getNetwork('bridge').disconnect({ Container: c.id });
  assert.deepEqual(Object.keys((await c.inspect()).NetworkSettings.Networks), ['appnet']);
  const busy = docker(s, ['network', 'rm', 'appnet']);
  assert.notEqual(busy.code, 0);
  assert.match(busy.stderr, /active endpoints/);
  await c.remove({ force: true });
  dk('rm', '-f', 'svc');
  assert.match(docker(s, ['network', 'rm', 'bridge']).stderr, /pre-defined/);
  dk('network', 'rm', 'appnet');
  await d.createNetwork({ Name: 'unused', Driver: 'bridge' });
  const pruned = await d.pruneNetworks();
  assert.deepEqual(pruned.NetworksDeleted, ['unused']);
  assert.equal((await d.listNetworks()).map((n) => n.Name).sort().join(','), 'bridge,host,none');
  const dup = docker(s, ['network', 'create', 'bridge']);
  assert.notEqual(dup.code, 0);
  await assertNoNetwork(tr.root);
});
