import { stringify as toYaml } from 'yaml';
import type { Config } from '../config/load.ts';
import type { ManagerInfo } from '../coordination/coordinator.ts';
import { renderDoctorText, doctorReport } from '../doctor/render.ts';
import { UsageError } from '../errors.ts';
import { addInstanceToCluster, inventoryLocation, proposalSummary, proposeCluster, registerCluster, registrationBlocked, unregisterCluster, type ClusterProposal } from '../inventory/clusters.ts';
import type { ReloadReport } from '../inventory/diff.ts';
import { isOurProcess, readPidFile } from '../util/processes.ts';
import { managerPidFile } from './run.ts';
import { apiBaseUrl, callManager, managerRefusal } from './api-client.ts';
import { loadConfigWithOrigins, withCoordinator } from './config.ts';
import { hostname } from 'node:os';

const by = () => `cli@${hostname()}`;

/**
 * `regent cluster add NAME --seed HOST:PORT`: crawls the topology from one server, shows what it
 * found with the doctor's findings, and registers it (YAML with the local backend, the etcd
 * inventory otherwise); a running manager takes it on (reload, or the etcd watch).
 */
export async function clusterAddCommand(path: string, name: string, opts: { seed: string; dryRun?: boolean; acceptFindings?: boolean; json?: boolean }): Promise<number> {
  const { config } = await loadConfigWithOrigins(path);
  const out = (s: string) => (opts.json ? undefined : process.stdout.write(s));
  return withCoordinator(config, async (coordinator) => {
    out(`crawling the topology from ${opts.seed} as ${config.defaultAccounts.manager.user}\n`);
    const proposal = await proposeCluster(config, coordinator, name, opts.seed);
    if (!opts.json) process.stdout.write(renderProposal(proposal));
    const blocked = registrationBlocked(proposal, opts.acceptFindings ?? false);
    if (blocked || opts.dryRun) {
      if (opts.json) process.stdout.write(`${JSON.stringify({ ...proposalSummary(proposal), registered: false, why: blocked ?? 'dry run' }, null, 2)}\n`);
      if (blocked) throw new UsageError(`cluster ${name} not registered: ${blocked}`);
      out(`dry run: nothing registered (without --dry-run this goes to ${inventoryLocation(config)})\n`);
      return 0;
    }
    const where = await registerCluster(config, coordinator, proposal, { acceptFindings: opts.acceptFindings ?? false, by: by() });
    out(`registered cluster ${name} in ${where}\n`);
    const taken = await tellManager(config, name);
    if (opts.json) process.stdout.write(`${JSON.stringify({ ...proposalSummary(proposal), registered: true, where, manager: taken }, null, 2)}\n`);
    else out(`${taken.line}\n`);
    return 0;
  });
}

/** `regent cluster remove NAME`: stops managing it (its servers are not touched). */
export async function clusterRemoveCommand(path: string, name: string, opts: { json?: boolean }): Promise<number> {
  const { config, origins } = await loadConfigWithOrigins(path);
  return withCoordinator(config, async (coordinator) => {
    const where = await unregisterCluster(config, coordinator, origins, name, by());
    const taken = await tellManager(config, name, true);
    if (opts.json) process.stdout.write(`${JSON.stringify({ removed: name, where, manager: taken }, null, 2)}\n`);
    else process.stdout.write(`removed cluster ${name} from ${where} (its servers keep running, unmanaged)\n${taken.line}\n`);
    return 0;
  });
}

/** `regent cluster add-instance NAME HOST:PORT`: one more server of a registered cluster (a replica attached later). */
export async function clusterAddInstanceCommand(path: string, name: string, address: string, opts: { json?: boolean }): Promise<number> {
  const { config, origins } = await loadConfigWithOrigins(path);
  return withCoordinator(config, async (coordinator) => {
    const where = await addInstanceToCluster(config, coordinator, origins, name, address);
    const taken = config.coordination.backend === 'etcd' ? { line: 'every manager follows the inventory and takes it on within a second' } : await tellManager(config, name);
    if (opts.json) process.stdout.write(`${JSON.stringify({ cluster: name, added: address, where, manager: taken }, null, 2)}\n`);
    else process.stdout.write(`added ${address} to cluster ${name} in ${where}\n${taken.line}\n`);
    return 0;
  });
}

/** `regent cluster list`: every cluster, where it is registered, and (with a manager) who leads it. */
export async function clusterListCommand(path: string, opts: { json?: boolean }): Promise<number> {
  const { config, origins, skipped } = await loadConfigWithOrigins(path);
  const leaders = await leadersOf(config);
  const rows = config.clusters.map((c) => ({ name: c.name, origin: origins.get(c.name) ?? 'file', instances: c.instances.map((i) => i.id), leader: leaders.get(c.name) }));
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ clusters: rows, skipped }, null, 2)}\n`);
    return 0;
  }
  if (rows.length === 0) process.stdout.write(`no clusters (register one with: regent cluster add NAME --seed HOST:PORT --config ${config.file})\n`);
  const width = Math.max(4, ...rows.map((r) => r.name.length));
  for (const r of rows) process.stdout.write(`${r.name.padEnd(width)}  ${(r.origin === 'file' ? 'config file' : 'inventory').padEnd(11)}  ${String(r.instances.length).padStart(2)} instances  ${r.leader ? `led by ${r.leader}` : ''}\n`);
  for (const s of skipped) process.stdout.write(`${s.name.padEnd(width)}  LEFT OUT: ${s.error}\n`);
  return 0;
}

/**
 * `regent reload`: the running manager reads its configuration again (and with etcd the
 * inventory). Through the API when it has one; otherwise SIGHUP to the local manager.
 */
export async function reloadCommand(path: string, opts: { json?: boolean }): Promise<number> {
  const { config } = await loadConfigWithOrigins(path);
  if (!config.api) return signalLocalManager(config);
  const answer = await callManager(config, 'POST', '/api/v1/reload', {}, 60000);
  if (!answer) throw new UsageError(`no manager answers at ${apiBaseUrl(config.api)}: a manager that starts reads the configuration anyway`);
  if (answer.status !== 200) {
    const r = managerRefusal(answer, 'reload');
    process.stderr.write(`${r.line}\n`);
    return r.code;
  }
  const report = answer.json['report'] as ReloadReport;
  process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${describeReload(report)}\n`);
  return 0;
}

function describeReload(r: ReloadReport): string {
  const lines = [`reloaded: added ${r.added.join(', ') || 'none'}; removed ${r.removed.join(', ') || 'none'}; changed ${r.changed.join(', ') || 'none'}; ${r.unchanged.length} unchanged`];
  for (const s of r.skipped) lines.push(`left out ${s.name}: ${s.error}`);
  if (r.needsRestart.length > 0) lines.push(`changed, and taking effect only when the manager restarts: ${r.needsRestart.join(', ')}`);
  return lines.join('\n');
}

async function signalLocalManager(config: Config): Promise<number> {
  if (config.coordination.backend === 'etcd') throw new UsageError('manager.api is not set: with etcd, register clusters with `regent cluster add` (every manager follows the inventory) or send SIGHUP to each `regent run`');
  const pid = readPidFile(managerPidFile(config));
  if (pid === undefined || !isOurProcess(pid, 'run')) throw new UsageError(`no manager runs for ${config.file} on this host (and manager.api is not set): a manager that starts reads the configuration anyway`);
  process.kill(pid, 'SIGHUP');
  process.stdout.write(`sent SIGHUP to the manager (pid ${pid}); its log says what changed (event config_reloaded) or why nothing did (reload_failed)\n`);
  return 0;
}

/**
 * After a registration or removal: the local manager reloads (through its API); with etcd every
 * manager follows the inventory by watch, so this waits until one leads the cluster (or none does).
 */
async function tellManager(config: Config, cluster: string, removed = false): Promise<{ line: string; leader?: string }> {
  if (config.coordination.backend !== 'etcd') {
    if (!config.api) return { line: 'a running manager takes it on `regent reload` (or SIGHUP); one that starts reads it anyway' };
    const base = apiBaseUrl(config.api);
    try {
      const answer = await callManager(config, 'POST', '/api/v1/reload', {}, 60000);
      if (!answer) return { line: `no manager answers at ${base}: one that starts reads it` };
      if (answer.status !== 200) return { line: `the manager at ${base} did not reload: ${String(answer.json['error'] ?? answer.status)}; run regent reload once that is fixed` };
      return { line: `the manager at ${base} ${describeReload(answer.json['report'] as ReloadReport)}` };
    } catch (e) {
      return { line: `could not ask the manager at ${base}: ${(e as Error).message}` };
    }
  }
  for (let i = 0; i < 50; i++) {
    const leader = (await leadersOf(config)).get(cluster);
    if (removed ? !leader : leader) return { line: removed ? 'no manager leads it any more' : `led by manager ${leader}`, leader };
    await new Promise((r) => setTimeout(r, 200));
  }
  return { line: removed ? 'a manager still leads it after 10 s; regent cluster list shows who' : 'no manager took it on within 10 s (is one running?); regent cluster list shows who leads what' };
}

function renderProposal(p: ClusterProposal): string {
  const lines: string[] = [];
  const shown = p.discovery.instances;
  lines.push(`found ${shown.length} instance${shown.length === 1 ? '' : 's'}:`);
  for (const i of shown) {
    const role = !i.obs?.reachable ? 'UNREACHABLE' : i.id === p.discovery.primary ? 'primary' : i.obs.replica ? `replica of ${i.obs.replica.sourceHost}:${i.obs.replica.sourcePort}` : 'replicates from nobody';
    lines.push(`  ${i.id.padEnd(21)}  ${role.padEnd(32)}  ${i.obs?.settings?.version ?? i.error ?? ''}  (${i.via})`);
  }
  for (const f of p.discovery.findings) lines.push(`  ${f.severity === 'critical' ? 'CRITICAL' : 'WARNING '}  ${f.message}\n            fix: ${f.fix}`);
  if (p.findings.length > 0) {
    const notOk = p.findings.filter((f) => f.severity !== 'ok');
    const count = (sev: string) => p.findings.filter((f) => f.severity === sev).length;
    lines.push('', `doctor: ${count('critical')} critical, ${count('warning')} warning(s), ${count('ok')} checks ok`);
    if (notOk.length > 0) lines.push(renderDoctorText(doctorReport([{ name: p.name, findings: notOk }])).trimEnd());
  }
  if (p.refusals.length === 0) lines.push('', 'the cluster entry:', toYaml([p.entry]).trimEnd().replace(/^/gm, '  '));
  return `${lines.join('\n')}\n`;
}

/** Which manager leads each cluster, from the managers' registry (empty when none answers). */
async function leadersOf(config: Config): Promise<Map<string, string>> {
  const leaders = new Map<string, string>();
  const managers = await withCoordinator(config, async (c) => (c ? c.managers() : (((await callManager(config, 'GET', '/api/v1/managers', undefined, 3000))?.json['managers'] as ManagerInfo[] | undefined) ?? []))).catch(() => []);
  for (const m of managers) for (const cluster of m.leads ?? []) leaders.set(cluster, m.id);
  return leaders;
}
