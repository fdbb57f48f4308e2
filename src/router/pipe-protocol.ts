/** IPC between the manager (accepts, decides, holds) and its pipe processes (move bytes). */

export type ToPipeProcess =
  /** Sent with the client socket as the IPC handle. */
  | { op: 'pipe'; conn: number; host: string; port: number }
  | { op: 'close'; id: number; conns: number[] }
  | { op: 'stop' };

export type FromPipeProcess =
  | { ev: 'ready' }
  | { ev: 'closed'; conn: number; bytesFromClient: number; bytesToClient: number }
  | { reply: number; closed: number };
