import { chmodSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isMap, isSeq, parseDocument, type Document } from 'yaml';
import { parseConfigText } from '../config/load.ts';
import { ConfigError, UsageError } from '../errors.ts';

/**
 * Edits the clusters of a configuration file in place, keeping its comments and layout (the
 * local backend's inventory is the file itself). Every edit is validated as a whole file before
 * it is written, and written atomically (a new file renamed over the old, same mode): a manager
 * reloading at that moment reads the old file or the new one, never half of one.
 */

function readDocument(file: string): { doc: Document; text: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`config ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new ConfigError(`config ${file}: not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}; fix it before registering clusters`);
  return { doc, text };
}

function clusterIndex(doc: Document, name: string): number {
  const seq = doc.get('clusters');
  if (!isSeq(seq)) return -1;
  return seq.items.findIndex((item) => isMap(item) && item.get('name') === name);
}

function write(file: string, doc: Document): void {
  const text = doc.toString({ lineWidth: 0 });
  // The whole file as the manager would load it: an edit that makes it invalid changes nothing.
  parseConfigText(text, file);
  const tmp = `${file}.regent-${process.pid}.tmp`;
  const mode = statSync(file).mode & 0o777;
  try {
    writeFileSync(tmp, text, { mode });
    chmodSync(tmp, mode);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Appends a cluster entry to `clusters:`; refuses a name the file already has. */
export function addClusterToFile(file: string, entry: Record<string, unknown> & { name: string }): void {
  const { doc } = readDocument(file);
  if (clusterIndex(doc, entry.name) >= 0) throw new UsageError(`${file} already has a cluster named "${entry.name}"; choose another name or remove it first (regent cluster remove ${entry.name})`);
  const seq = doc.get('clusters');
  if (isSeq(seq)) {
    // `clusters: []` is written in flow style; the new entry reads better as a block.
    if (seq.items.length === 0) seq.flow = false;
    seq.items.push(doc.createNode(entry));
  } else doc.set('clusters', doc.createNode([entry]));
  write(file, doc);
}

/** Takes a cluster out of `clusters:` (its comments go with it). */
export function removeClusterFromFile(file: string, name: string): void {
  const { doc } = readDocument(file);
  const i = clusterIndex(doc, name);
  if (i < 0) throw new UsageError(`${file} has no cluster named "${name}"`);
  (doc.get('clusters') as { items: unknown[] }).items.splice(i, 1);
  write(file, doc);
}

/** Appends an instance to a cluster's `instances:` (a replica noticed later, `regent cluster add-instance`). */
export function addInstanceToFile(file: string, cluster: string, instance: { host: string; port: number }): void {
  const { doc } = readDocument(file);
  const i = clusterIndex(doc, cluster);
  if (i < 0) throw new UsageError(`${file} has no cluster named "${cluster}"`);
  const entry = (doc.get('clusters') as { items: unknown[] }).items[i];
  if (!isMap(entry)) throw new UsageError(`${file}: cluster "${cluster}" is not a mapping`);
  const instances = entry.get('instances');
  if (!isSeq(instances)) throw new UsageError(`${file}: cluster "${cluster}" has no instances list`);
  instances.items.push(doc.createNode(instance));
  write(file, doc);
}
