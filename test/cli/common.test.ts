/**
 * Pieces of lib/cli/common.ts that the servers share: the log line of a listener's `tunnelError`
 * event and the one message for a socket that cannot listen.
 */
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { createLogger, ErrorCode, QuantumTunnelError, type Tunnel } from '../../lib/index.js';
import { cannotListen, logTunnelError } from '../../lib/cli/common.js';

class Lines extends Writable {
  readonly records: Array<Record<string, unknown>> = [];
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    for (const l of chunk.toString('utf8').split('\n')) if (l !== '') this.records.push(JSON.parse(l) as Record<string, unknown>);
    cb();
  }
}

describe('cli: shared server pieces', () => {
  it('logTunnelError: warn, the code, the masked peer and the session prefix; never the message', () => {
    const lines = new Lines();
    const logger = createLogger({ stream: lines, format: 'json', level: 'info' });
    const tunnel = { info: () => ({ remoteAddress: '192.0.2.77', remotePort: 50123, sessionId: 'ab'.repeat(32) }) } as unknown as Tunnel;
    const error = new QuantumTunnelError('peer-chosen text that must not be logged', ErrorCode.AUTHENTICATION_FAILED);
    logTunnelError(logger, error, tunnel);
    expect(lines.records).to.have.length(1);
    expect(lines.records[0]).to.include({ level: 'warn', msg: 'tunnel error', error: 'ERR_QT_AUTHENTICATION_FAILED', peer: '192.0.2.x:50123', session: 'ab'.repeat(8) });
    expect(JSON.stringify(lines.records[0])).not.to.include('peer-chosen');
    // A tunnel whose info() cannot be read any more, and an error without a code.
    const gone = { info: () => { throw new Error('destroyed'); } } as unknown as Tunnel;
    logTunnelError(logger, new Error('x'), gone);
    expect(lines.records[1]).to.include({ level: 'warn', error: 'unknown', peer: 'unknown' });
  });

  it('cannotListen: EADDRINUSE becomes ERR_QT_ADDRESS_IN_USE naming the address and the flag; other errors keep their reason', () => {
    const inUse = Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:8443'), { code: 'EADDRINUSE', errno: -98, syscall: 'listen' });
    const e = cannotListen(inUse, { host: '127.0.0.1', port: 8443 }, '--addr');
    expect(e.message).to.equal('cannot listen on 127.0.0.1:8443 (--addr): address already in use (ERR_QT_ADDRESS_IN_USE)');
    expect(e.cause).to.be.instanceOf(QuantumTunnelError).with.property('code', ErrorCode.ADDRESS_IN_USE);
    expect((e.cause as QuantumTunnelError).syscallCode).to.equal('EADDRINUSE');
    const denied = Object.assign(new Error('listen EACCES: permission denied 0.0.0.0:80'), { code: 'EACCES', errno: -13, syscall: 'listen' });
    expect(cannotListen(denied, { host: '0.0.0.0', port: 80 }, '--listen', 'try a port above 1024').message).to.equal(
      'cannot listen on 0.0.0.0:80 (--listen): permission denied (EACCES); try a port above 1024',
    );
  });
});
