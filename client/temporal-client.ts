import { Client, Connection } from '@temporalio/client';
import { temporalTarget, unreachableMessage } from '../lib/temporal/connection';

export class TemporalUnreachableError extends Error {
  readonly retryable = true;
  constructor(message: string) {
    super(message);
    this.name = 'TemporalUnreachableError';
  }
}

/** A Temporal client for the CLI, on the standard TEMPORAL_* settings (or an address weft just started). */
export async function connectClient(address?: string): Promise<{ client: Client; close(): Promise<void> }> {
  const target = temporalTarget();
  const options = { ...target.connectionOptions, address: address ?? target.address };
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...options, connectTimeout: 5000 });
  } catch (error) {
    throw new TemporalUnreachableError(unreachableMessage({ ...target, address: options.address }, error));
  }
  return { client: new Client({ connection, namespace: target.namespace }), close: () => connection.close() };
}
