/**
 * `--sysctl`: only the sysctls a container's own namespaces hold (the OCI runtime writes them
 * inside the container); a global one would change the host and is refused. The list is
 * runc's and docker's: IPC (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*), network (net.*,
 * not with --network host, where the namespace is the host's), UTS (kernel.domainname; the
 * hostname has its own flag). Pure.
 */
import { invalid } from '../../errors.js';

const IPC = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'];

/** KEY=VALUE -> [key, value]; the key may be written with / for . (sysctl(8) accepts both). */
export function parseSysctl(flag: string): [string, string] {
  const i = flag.indexOf('=');
  if (i <= 0) throw invalid(`invalid --sysctl ${JSON.stringify(flag)}: expected KEY=VALUE`);
  return [flag.slice(0, i).trim().replace(/\//g, '.'), flag.slice(i + 1)];
}

/**
 * Check each sysctl is namespaced for this container. `network`: its network mode ('host'
 * shares the host's namespace). Throws INVALID_ARGUMENT naming the first one that is not.
 */
export function checkSysctls(sysctls: Record<string, string>, network: string | undefined): void {
  for (const key of Object.keys(sysctls)) {
    if (!/^[a-z0-9_]+(\.[a-zA-Z0-9_*-]+)+$/.test(key)) throw invalid(`invalid --sysctl ${JSON.stringify(key)}: not a sysctl name`);
    if (IPC.includes(key) || key.startsWith('fs.mqueue.') || key === 'kernel.domainname') continue;
    if (key.startsWith('net.')) {
      if (network === 'host') throw invalid(`sysctl ${JSON.stringify(key)} is not allowed with --network host: the network namespace is the host's, so it would change the host`);
      continue;
    }
    throw invalid(
      `sysctl ${JSON.stringify(key)} is not namespaced: setting it would change the whole host. Allowed: ${IPC.join(', ')}, fs.mqueue.*, net.* (not with --network host), kernel.domainname`,
    );
  }
}
