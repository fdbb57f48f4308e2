// The probe-load simulator as a process of its own:
//
//   npx tsx src/sim/main.ts --clusters 333 --size 3 --dir /tmp/fleet [--api 127.0.0.1:18080]
//       [--control 127.0.0.1:0] [--net 127.77] [--port 61500] [--write-rate 10] [--latency-ms 0]
//
// It listens on one loopback address per instance, writes <dir>/regent.yaml (run `regent run
// --config <dir>/regent.yaml` against it), prints one JSON line on stdout when ready
// ({"event":"sim_ready","control":"http://...","config":...}), and is driven over the control
// HTTP API (src/sim/control-http.ts). SIGTERM or SIGINT stops it.
import { parseArgs } from 'node:util';
import { startControlServer } from './control-http.ts';
import { FleetSimulator } from './fleet.ts';

const { values } = parseArgs({
  options: {
    clusters: { type: 'string', default: '10' },
    size: { type: 'string', default: '3' },
    dir: { type: 'string' },
    api: { type: 'string' },
    control: { type: 'string', default: '127.0.0.1:0' },
    net: { type: 'string' },
    port: { type: 'string' },
    'write-rate': { type: 'string' },
    'latency-ms': { type: 'string' },
    'probe-interval-ms': { type: 'string' },
  },
});

const hostPort = (s: string): { host: string; port: number } => {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
};

const fleet = await FleetSimulator.start({
  clusters: Number(values.clusters),
  size: Number(values.size),
  net: values.net,
  port: values.port ? Number(values.port) : undefined,
  writeRate: values['write-rate'] ? Number(values['write-rate']) : undefined,
  latencyMs: values['latency-ms'] ? Number(values['latency-ms']) : undefined,
});
const control = await startControlServer(fleet, hostPort(values.control!));
const addr = control.address() as { address: string; port: number };
const config = values.dir
  ? fleet.writeRegentConfig({
      dir: values.dir,
      apiListen: values.api,
      clusterOverrides: values['probe-interval-ms'] ? { monitor: { probeIntervalMs: Number(values['probe-interval-ms']) } } : undefined,
    })
  : undefined;
process.stdout.write(
  `${JSON.stringify({ event: 'sim_ready', pid: process.pid, control: `http://${addr.address}:${addr.port}`, config, instances: fleet.instanceCount, clusters: fleet.clusters.length, net: fleet.net, port: fleet.port })}\n`,
);

const stop = async () => {
  control.close();
  await fleet.stop();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
