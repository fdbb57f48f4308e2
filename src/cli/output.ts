/**
 * What every `regent` command shares about its output: a reader that goes away (`regent status |
 * head -1`) is not an error, and the exit codes mean the same for every command.
 */

/** The exit codes, as `regent --help`, README and docs/runbooks.md state them. */
export const EXIT_CODES_HELP = `
Exit codes (every command):
  0  done; status: healthy; doctor: everything in place
  1  refused (nothing changed) or failed, with one line on stderr saying why;
     status: degraded; doctor: warnings only
  2  unusable input: bad arguments or configuration, credentials rejected, nothing reachable,
     the manager's API refused the token or its TLS certificate is not trusted;
     doctor: a failover would be unsafe; run: every instance of a cluster rejects the credentials
A closed output pipe (regent status | head -1) ends nothing and prints nothing: the command
finishes what it was doing and exits with its own code.
`;

/** Streams whose reader went away (or that failed): nothing more is reported about them. */
const closed = new WeakSet<NodeJS.WriteStream>();
const guarded = new WeakSet<NodeJS.WriteStream>();

/**
 * Installs, once, the handler that turns EPIPE on stdout or stderr into silence. Node ignores
 * SIGPIPE, so a write to a pipe whose reader exited fails with EPIPE as an 'error' event, and an
 * unhandled one kills the process with a stack trace, in the middle of whatever the command was
 * doing (a switchover, the manager's loop). Later writes to that stream are dropped without a sound.
 */
export function guardPipes(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    if (guarded.has(stream)) continue;
    const onError = (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') {
        closed.add(stream);
        return;
      }
      // Any other failure to write output (a full disk behind a redirect): say it once where
      // possible and fail, instead of an uncaught exception.
      if (stream !== process.stderr && !closed.has(process.stderr)) process.stderr.write(`regent: cannot write the output: ${e.message}\n`);
      process.exitCode = 1;
      closed.add(stream);
    };
    stream.on('error', onError);
    guarded.add(stream);
  }
}
