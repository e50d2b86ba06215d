// Network namespaces for the tests that need multicast or an interface of their own: nothing they send leaves the
// namespace, and each test deletes its namespace when it ends.
import { spawnSync } from 'node:child_process';

/** Root, and `ip netns` works. */
export function canUseNetns(): boolean {
  if (process.getuid?.() !== 0) return false;
  const r = spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  return r.status === 0;
}

/**
 * A network namespace with lo up and multicast routed to lo, or, given `dummy` (an address/prefix), to `v0`, one
 * end of a veth pair inside the namespace, with that address (a LAN-like interface whose packets stay in it).
 */
export function netns(
  dummy?: string,
): { name: string; exec: (cmd: string[]) => string[]; remove: () => void } | undefined {
  const name = `speakerd-test-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
  const run = (args: string[]) => spawnSync('ip', args, { stdio: 'pipe', encoding: 'utf8' });
  const inNs = (...cmd: string[]) => ['netns', 'exec', name, 'ip', ...cmd];
  const steps = [
    ['netns', 'add', name],
    inNs('link', 'set', 'lo', 'up'),
    ...(dummy
      ? [
          // a veth pair (dummy interfaces need a kernel module that containers often lack); v1 is its far end
          inNs('link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1'),
          inNs('addr', 'add', dummy, 'dev', 'v0'),
          inNs('link', 'set', 'v0', 'up'),
          inNs('link', 'set', 'v1', 'up'),
          inNs('route', 'add', '224.0.0.0/4', 'dev', 'v0'),
        ]
      : [inNs('route', 'add', '224.0.0.0/4', 'dev', 'lo')]),
  ];
  for (const st of steps) {
    const r = run(st);
    if (r.status !== 0) {
      run(['netns', 'del', name]);
      console.log(`skipped: cannot set up a network namespace (${st.join(' ')}: ${r.stderr.trim()})`);
      return undefined;
    }
  }
  return { name, exec: (cmd) => ['netns', 'exec', name, ...cmd], remove: () => void run(['netns', 'del', name]) };
}
