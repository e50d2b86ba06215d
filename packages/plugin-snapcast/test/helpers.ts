import { createServer, type Server, type Socket } from 'node:net';

/** One connection a {@link Sink} accepted: what came on it, and whether it has ended. */
export interface SinkConnection {
  readonly socket: Socket;
  readonly chunks: Buffer[];
  readonly closed: Promise<void>;
  ended: boolean;
  bytes(): Buffer;
}

/** A real TCP listener on a free loopback port standing in for snapserver's `mode=server` tcp source. */
export interface Sink {
  readonly server: Server;
  readonly port: number;
  readonly connections: SinkConnection[];
  /** Resolves with the next connection (or the latest one, if it came after `since`). */
  nextConnection(since?: number): Promise<SinkConnection>;
  close(): Promise<void>;
}

export async function sink(port = 0): Promise<Sink> {
  const connections: SinkConnection[] = [];
  const waiters: (() => void)[] = [];
  const server = createServer((socket) => {
    const chunks: Buffer[] = [];
    let markClosed!: () => void;
    const c: SinkConnection = {
      socket,
      chunks,
      closed: new Promise<void>((r) => (markClosed = r)),
      ended: false,
      bytes: () => Buffer.concat(chunks),
    };
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      c.ended = true;
      markClosed();
    });
    connections.push(c);
    for (const w of waiters.splice(0)) w();
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = (server.address() as { port: number }).port;
  return {
    server,
    port: actual,
    connections,
    async nextConnection(since = connections.length) {
      while (connections.length <= since) await new Promise<void>((r) => waiters.push(r));
      return connections[since]!;
    },
    async close() {
      for (const c of connections) c.socket.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Let real I/O happen (sockets connect, data arrives) while a VirtualClock stands still. */
export const settle = (ms = 30) => new Promise((r) => setTimeout(r, ms));

/** `bytes` without its leading and trailing zero frames. */
export function trimSilence(bytes: Uint8Array, frameBytes: number): Uint8Array {
  const zero = (f: number) => {
    for (let i = f * frameBytes; i < (f + 1) * frameBytes; i++) if (bytes[i] !== 0) return false;
    return true;
  };
  const frames = Math.floor(bytes.length / frameBytes);
  let a = 0;
  while (a < frames && zero(a)) a++;
  let b = frames;
  while (b > a && zero(b - 1)) b--;
  return bytes.subarray(a * frameBytes, b * frameBytes);
}
