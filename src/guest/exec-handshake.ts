/**
 * The exec channel's handshake: the client sends HELLO with a nonce (again every few seconds,
 * since the agent drops a partial frame a dead client left), the agent answers HELLO_ACK with
 * the same nonce. Output before the answer is stale, meant for an earlier client.
 */
import type { Socket } from 'node:net';
import {
  FrameDecoder,
  FrameType,
  HEADER_SIZE,
  MAX_PAYLOAD,
  PROTOCOL_VERSION,
  ProtocolError,
  decodeHelloAck,
  encodeHello,
  findHelloReply,
  type HelloAck,
} from './exec-protocol.js';
import { ExecChannelError } from './exec-types.js';

/** Resent until answered: the agent drops a partial frame left by a dead client after 2 s idle. */
export const HELLO_RESEND_MS = 3000;

/** What the bytes received so far say about the handshake. */
export type HelloReplyState =
  /** Not complete yet: keep `pending` and wait for more bytes. */
  | { kind: 'more'; pending: Buffer }
  /** The agent accepted; `leftover` is the start of the connection proper. */
  | { kind: 'ack'; ack: HelloAck; leftover: Buffer }
  | { kind: 'error'; error: ExecChannelError };

/** Reads the agent's answer to HELLO `nonce` from the bytes received so far (`where` names the node in errors). */
export function readHelloReply(received: Buffer, nonce: bigint, where: string): HelloReplyState {
  const found = findHelloReply(received, nonce);
  if ('discard' in found) return { kind: 'more', pending: received.subarray(found.discard) };
  const rest = received.subarray(found.offset);
  if (rest.length < HEADER_SIZE) return { kind: 'more', pending: received };
  const len = rest.readUInt32BE(16);
  const protocolError = (e: unknown) => ({ kind: 'error' as const, error: new ExecChannelError('EXEC_PROTOCOL', `${where}: ${(e as Error).message}`, { cause: e }) });
  if (len > MAX_PAYLOAD) return protocolError(new ProtocolError(`the handshake reply announces a ${len}-byte payload; the stream is corrupt`));
  if (rest.length < HEADER_SIZE + len) return { kind: 'more', pending: received };
  let reply;
  try {
    // Decode just the reply; anything after it belongs to the connection proper.
    reply = new FrameDecoder().push(rest.subarray(0, HEADER_SIZE + len))[0]!;
  } catch (e) {
    return protocolError(e);
  }
  const leftover = Buffer.from(rest.subarray(HEADER_SIZE + reply.payload.length));
  if (reply.type === FrameType.Error) {
    const msg = reply.payload.toString('utf8');
    return {
      kind: 'error',
      error: new ExecChannelError(/version/i.test(msg) ? 'EXEC_VERSION' : 'EXEC_AGENT_ERROR', `The guest agent on ${where} refused the connection: ${msg}`),
    };
  }
  let ack: HelloAck;
  try {
    ack = decodeHelloAck(reply.payload);
  } catch (e) {
    return protocolError(e);
  }
  if (ack.version !== PROTOCOL_VERSION) {
    return {
      kind: 'error',
      error: new ExecChannelError(
        'EXEC_VERSION',
        `The guest agent on ${where} speaks exec protocol ${ack.version}, this falcon speaks ${PROTOCOL_VERSION}: rebuild the node's image.`,
      ),
    };
  }
  return { kind: 'ack', ack, leftover };
}

/** The error for a socket that failed to connect or broke during the handshake. */
export function connectError(e: NodeJS.ErrnoException, where: string): ExecChannelError {
  if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
    return new ExecChannelError(
      'EXEC_NOT_RUNNING',
      `Cannot exec on ${where}: the node is not running (${e.code === 'ENOENT' ? 'no such socket' : 'nobody is listening'}). ` +
        'Launch the topology first, and check the node name.',
      { cause: e },
    );
  }
  // QEMU's listen backlog is 1: with more falcon processes queued, connect fails with EAGAIN.
  if (e.code === 'EAGAIN') {
    return new ExecChannelError('EXEC_BUSY', `The exec channel of ${where} is busy: other falcon commands are queued on it. Retry when they are done.`, {
      cause: e,
    });
  }
  return new ExecChannelError('EXEC_CONNECTION_LOST', `Cannot connect to ${where}: ${e.message}`, { cause: e });
}

export function noAnswerError(where: string, timeoutMs: number): ExecChannelError {
  return new ExecChannelError(
    'EXEC_NO_ANSWER',
    `The guest agent on ${where} did not answer within ${timeoutMs} ms. The guest may still be booting, ` +
      'falcon-agent may not be running in it (check the serial console), or another falcon command is using ' +
      'the exec channel (connections queue until it finishes); retry or raise the timeout.',
  );
}

export interface HandshakeOptions {
  nonce: bigint;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Names the node in errors (see whereIs). */
  where: string;
  resendMs?: number;
}

/**
 * Performs the handshake on a socket that is connecting. Resolves with the agent's answer and
 * the bytes after it, the socket's listeners removed; on failure destroys the socket.
 */
export function handshake(socket: Socket, o: HandshakeOptions): Promise<{ ack: HelloAck; leftover: Buffer }> {
  return new Promise((resolve, reject) => {
    let pending: Buffer = Buffer.alloc(0);
    let done = false;
    let resend: NodeJS.Timeout | undefined;
    const finish = (err: unknown, ok?: { ack: HelloAck; leftover: Buffer }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(resend);
      o.signal?.removeEventListener('abort', onAbort);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.off('connect', onConnect);
      if (ok) return resolve(ok);
      socket.on('error', () => {}); // late errors of an abandoned socket are of no interest
      socket.destroy();
      reject(err);
    };
    const onAbort = () => finish(o.signal!.reason);
    const timer = setTimeout(() => finish(noAnswerError(o.where, o.timeoutMs)), o.timeoutMs);
    const onError = (e: NodeJS.ErrnoException) => finish(connectError(e, o.where));
    const onClose = () =>
      finish(new ExecChannelError('EXEC_CONNECTION_LOST', `The exec channel of ${o.where} closed during the handshake; the node may be shutting down. Retry once it runs.`));
    const onData = (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      const r = readHelloReply(pending, o.nonce, o.where);
      if (r.kind === 'more') pending = r.pending;
      else if (r.kind === 'error') finish(r.error);
      else finish(undefined, { ack: r.ack, leftover: r.leftover });
    };
    const onConnect = () => {
      const hello = encodeHello(o.nonce);
      socket.write(hello);
      resend = setInterval(() => socket.write(hello), o.resendMs ?? HELLO_RESEND_MS);
    };
    if (o.signal?.aborted) return finish(o.signal.reason);
    o.signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('data', onData);
    if (socket.connecting) socket.once('connect', onConnect);
    else onConnect();
  });
}
