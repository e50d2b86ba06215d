import { connect } from 'node:net';

/** What snapserver's `Server.GetStatus` says about one stream (the parts this backend reads). */
export interface SnapStream {
  readonly id: string;
  readonly status: string;
  readonly uri: {
    readonly scheme: string;
    readonly host: string;
    readonly path: string;
    readonly raw: string;
    readonly query: Readonly<Record<string, string>>;
  };
}

/** A JSON-RPC request failed: no connection, a timeout, an error answer, or an answer we cannot read. */
export class ControlError extends Error {
  override name = 'ControlError';
}

/** Longest answer line accepted (Server.GetStatus with many clients is a few tens of KB). */
const MAX_LINE = 4 << 20;

/**
 * One JSON-RPC 2.0 request to snapserver's control port (TCP, one JSON object per line), on a connection of its
 * own that is closed once the answer (or an error, or the timeout) came. Never rejects with anything but a
 * {@link ControlError}. The timeout is real time: the request is network I/O, and start-up must stay bounded
 * whatever clock the backend runs on.
 */
export function rpc(
  host: string,
  port: number,
  method: string,
  params: Record<string, unknown> | undefined,
  timeoutMs: number,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let buf = '';
    let done = false;
    const finish = (err: Error | undefined, value?: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err instanceof ControlError ? err : new ControlError(err.message));
      else resolve(value);
    };
    const timer = setTimeout(
      () => finish(new ControlError(`no answer to ${method} from ${host}:${port} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    timer.unref();
    socket.setEncoding('utf8');
    socket.on('error', (err) => finish(new ControlError(`${host}:${port}: ${err.message}`)));
    socket.on('close', () => finish(new ControlError(`${host}:${port} closed the connection before answering`)));
    socket.on('connect', () => {
      const request: Record<string, unknown> = { id: 1, jsonrpc: '2.0', method };
      if (params !== undefined) request.params = params;
      socket.write(`${JSON.stringify(request)}\r\n`);
    });
    socket.on('data', (chunk: string) => {
      buf += chunk;
      for (;;) {
        const nl = buf.indexOf('\n');
        if (nl < 0) break;
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === '') continue;
        let msg: { id?: unknown; result?: unknown; error?: { message?: unknown; data?: unknown } };
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          return finish(new ControlError(`${host}:${port} answered something that is not JSON`));
        }
        if (msg.id !== 1) continue; // a notification (Stream.OnUpdate, …) for every control client
        if (msg.error)
          return finish(
            new ControlError(
              `${method}: ${String(msg.error.message)}${msg.error.data ? ` (${String(msg.error.data)})` : ''}`,
            ),
          );
        return finish(undefined, msg.result);
      }
      if (buf.length > MAX_LINE) finish(new ControlError(`${host}:${port}: answer longer than ${MAX_LINE} bytes`));
    });
  });
}

/** The streams snapserver has, from `Server.GetStatus`. */
export async function getStreams(host: string, port: number, timeoutMs: number): Promise<SnapStream[]> {
  const result = (await rpc(host, port, 'Server.GetStatus', undefined, timeoutMs)) as {
    server?: { streams?: unknown };
  };
  const streams = result?.server?.streams;
  if (!Array.isArray(streams)) throw new ControlError('Server.GetStatus: the answer has no server.streams');
  return streams.filter(
    (s): s is SnapStream =>
      typeof s === 'object' &&
      s !== null &&
      typeof (s as SnapStream).id === 'string' &&
      typeof (s as SnapStream).uri === 'object' &&
      (s as SnapStream).uri !== null,
  );
}
