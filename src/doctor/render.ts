import { countBySeverity, doctorExitCode } from './evaluate.ts';
import type { Finding } from './facts.ts';

export interface DoctorReport {
  clusters: { name: string; findings: Finding[] }[];
  summary: { ok: number; warning: number; critical: number };
  exitCode: 0 | 1 | 2;
}

export function doctorReport(clusters: { name: string; findings: Finding[] }[]): DoctorReport {
  const all = clusters.flatMap((c) => c.findings);
  return { clusters, summary: countBySeverity(all), exitCode: doctorExitCode(all) };
}

const LABEL = { ok: 'ok      ', warning: 'WARNING ', critical: 'CRITICAL' } as const;

/** One line per finding, and under anything not ok the fix; a summary with the exit code last. */
export function renderDoctorText(report: DoctorReport): string {
  const lines: string[] = [];
  for (const c of report.clusters) {
    const counts = countBySeverity(c.findings);
    lines.push(`cluster ${c.name}: ${counts.critical} critical, ${counts.warning} warning(s), ${counts.ok} ok`);
    const whoWidth = Math.max(0, ...c.findings.map((f) => who(f).length));
    const checkWidth = Math.max(0, ...c.findings.map((f) => f.check.length));
    // Cluster-wide findings first, then instance by instance, in the order they were checked.
    for (const f of c.findings) {
      lines.push(`  ${LABEL[f.severity]}  ${who(f).padEnd(whoWidth)}  ${f.check.padEnd(checkWidth)}  ${f.message}`);
      if (f.fix) lines.push(`  ${' '.repeat(8)}  ${' '.repeat(whoWidth)}  ${' '.repeat(checkWidth)}  fix: ${f.fix}`);
    }
    lines.push('');
  }
  const s = report.summary;
  const verdict =
    report.exitCode === 2 ? 'a failover would be unsafe or impossible: fix the CRITICAL findings first'
    : report.exitCode === 1 ? 'failover would work; the warnings degrade safety or operations'
    : 'everything Regent depends on is in place';
  lines.push(`summary: ${s.critical} critical, ${s.warning} warning(s), ${s.ok} ok: ${verdict} (exit ${report.exitCode})`);
  return `${lines.join('\n')}\n`;
}

function who(f: Finding): string {
  return f.instance ? `${f.name && f.name !== f.instance ? `${f.name} ` : ''}${f.instance}` : '(cluster)';
}
