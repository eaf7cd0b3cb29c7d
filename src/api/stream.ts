/**
 * Docker's stream replies: the framing itself is the stream layer's (src/streams/mux.ts); here
 * the content types and the head of a hijacked reply.
 */
export { frame, FrameDecoder, MAX_FRAME, type StreamId } from '../streams/mux.js';

export const RAW_STREAM = 'application/vnd.docker.raw-stream';
export const MULTIPLEXED_STREAM = 'application/vnd.docker.multiplexed-stream';

/**
 * The response that hands the connection over to the stream: docker's `101 UPGRADED`, or a
 * plain 200 when the client did not ask to upgrade. `multiplexed` is false with a TTY.
 */
export function hijackHead(upgrade: boolean, multiplexed: boolean, apiVersion: string): string {
  const type = multiplexed ? MULTIPLEXED_STREAM : RAW_STREAM;
  const lines = upgrade
    ? ['HTTP/1.1 101 UPGRADED', `Content-Type: ${type}`, 'Connection: Upgrade', 'Upgrade: tcp']
    : ['HTTP/1.1 200 OK', `Content-Type: ${type}`];
  lines.push(`Api-Version: ${apiVersion}`, 'Docker-Experimental: false', 'Ostype: linux', 'Server: hull');
  return `${lines.join('\r\n')}\r\n\r\n`;
}
