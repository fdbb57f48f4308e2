import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { freePorts, tempDir } from './env.ts';

/** A real 3-member etcd cluster from Debian on loopback, for the multi-manager tests. */
export class EtcdCluster {
  readonly members: { name: string; client: number; peer: number; proc?: ChildProcess; dir: string }[] = [];
  #dir = tempDir('regent-etcd-');

  static async start(size = 3): Promise<EtcdCluster> {
    const c = new EtcdCluster();
    const base = await freePorts(size * 2);
    for (let i = 0; i < size; i++) c.members.push({ name: `e${i + 1}`, client: base + i, peer: base + size + i, dir: join(c.#dir.path, `e${i + 1}`) });
    for (const m of c.members) c.#spawn(m);
    const client = new Etcd3({ hosts: c.endpoints });
    const deadline = Date.now() + 20000;
    for (;;) {
      try {
        await client.put('/regent-test/ready').value('1');
        break;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`etcd cluster did not come up: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    client.close();
    return c;
  }

  get endpoints(): string[] {
    return this.members.map((m) => `http://127.0.0.1:${m.client}`);
  }

  #spawn(m: EtcdCluster['members'][number]): void {
    mkdirSync(m.dir, { recursive: true });
    const initial = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.peer}`).join(',');
    m.proc = spawn(
      'etcd',
      [
        `--name=${m.name}`,
        `--data-dir=${m.dir}`,
        `--listen-client-urls=http://127.0.0.1:${m.client}`,
        `--advertise-client-urls=http://127.0.0.1:${m.client}`,
        `--listen-peer-urls=http://127.0.0.1:${m.peer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${m.peer}`,
        `--initial-cluster=${initial}`,
        '--initial-cluster-state=new',
        '--heartbeat-interval=100',
        '--election-timeout=500',
        '--log-level=error',
      ],
      { stdio: 'ignore' },
    );
  }

  /** Stops every member (SIGKILL when `hard`); `start` brings them back with their data. */
  async stopAll(hard = false): Promise<void> {
    await Promise.all(this.members.map((_, i) => this.stopMember(i, hard)));
  }

  async startAll(): Promise<void> {
    for (const m of this.members) this.#spawn(m);
    await new Promise((r) => setTimeout(r, 1500));
  }

  isRunning(i: number): boolean {
    const p = this.members[i]?.proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** Stops one member (SIGKILL when `hard`), by its PID; the others keep quorum. */
  async stopMember(i: number, hard = false): Promise<void> {
    const p = this.members[i]!.proc;
    if (!p || !this.isRunning(i)) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await exited;
  }

  /** Starts one stopped member again with its data (it rejoins the cluster it was part of). */
  startMember(i: number): void {
    if (!this.isRunning(i)) this.#spawn(this.members[i]!);
  }

  async destroy(): Promise<void> {
    await this.stopAll(true);
    this.#dir.remove();
  }
}
