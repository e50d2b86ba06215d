import {
  SpeakerdError,
  describeValue,
  type CommandHandler,
  type CommandMessage,
  type Logger,
} from '@speakerd/plugin-sdk';
import { errorText } from './errors.js';
import type { Recipients } from './recipients.js';
import type { Destination } from './transport.js';

const PLUGIN = 'rtp';

/**
 * The backend's commands (`rtp.add-recipient`, `rtp.remove-recipient`, docs/PROTOCOL.md section 6): each checks its
 * fields, changes the recipients, and answers with the list. A recipient is in both the transport and the native
 * thread, or in neither.
 */
export function recipientCommands(recipients: Recipients, log: Logger): Record<string, CommandHandler> {
  return {
    'add-recipient': async (m) => {
      const dest = parseDestination(m);
      try {
        try {
          await recipients.add(dest);
        } catch (err) {
          // a recipient is in both (the transport's sockets and the thread's) or in neither
          await recipients.remove(dest);
          throw err;
        }
      } catch (err) {
        throw new SpeakerdError('bad-command', `cannot send to ${dest.address}:${dest.port}: ${errorText(err)}`, {
          plugin: PLUGIN,
        });
      }
      log.info({ to: `${dest.address}:${dest.port}` }, 'recipient added');
      return { recipients: recipients.list() };
    },
    'remove-recipient': async (m) => {
      const dest = parseDestination(m);
      if (!(await recipients.remove(dest)))
        throw new SpeakerdError('bad-command', `${dest.address}:${dest.port} is not a recipient`, { plugin: PLUGIN });
      log.info({ to: `${dest.address}:${dest.port}` }, 'recipient removed');
      return { recipients: recipients.list() };
    },
  };
}

/** `address` (a host name or IP address) and `port` (1..65534) from a command; values described, never dumped. */
export function parseDestination(m: CommandMessage): Destination {
  const { address, port } = m;
  if (typeof address !== 'string' || address === '' || address.length > 253 || /[\s/]/.test(address))
    throw new SpeakerdError(
      'bad-command',
      `address: expected a host name or IP address, got ${describeValue(address)}`,
      {
        plugin: PLUGIN,
      },
    );
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65534)
    throw new SpeakerdError(
      'bad-command',
      `port: expected an integer 1..65534 (RTCP uses port + 1), got ${describeValue(port)}`,
      { plugin: PLUGIN },
    );
  return { address, port };
}
