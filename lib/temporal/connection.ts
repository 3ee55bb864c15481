import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { parseConfig } from '../config/config';

export interface TemporalTarget {
  connectionOptions: NativeConnectionOptions;
  namespace: string;
  address: string;
  /** True when the user pointed weft at a server (TEMPORAL_ADDRESS or a config profile), so weft must not start its own. */
  explicit: boolean;
}

/**
 * The Temporal connection, from Temporal's standard environment variables and config file
 * (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE), so the
 * same workers and CLI run against the embedded server, a cluster or Temporal Cloud unchanged.
 */
export function temporalTarget(environment: NodeJS.ProcessEnv = process.env): TemporalTarget {
  const overrideEnvVars = Object.fromEntries(
    Object.entries(environment).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
  const loaded = loadClientConnectConfig({ overrideEnvVars });
  // Without TEMPORAL_ADDRESS, weft talks to (or starts) the embedded server on WEFT_TEMPORAL_PORT.
  const address = loaded.connectionOptions.address ?? `127.0.0.1:${parseConfig(environment).temporalPort}`;
  return {
    connectionOptions: { ...loaded.connectionOptions, address },
    namespace: loaded.namespace ?? 'default',
    address,
    explicit: loaded.connectionOptions.address !== undefined,
  };
}

/** A message that tells a person what to do when Temporal cannot be reached. */
export function unreachableMessage(target: TemporalTarget, cause: unknown): string {
  const raw = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
  // The native transport's errors are Rust debug strings; the OS message inside them is what a person needs.
  const reason = /message: "([^"]+)"/.exec(raw)?.[1] ?? raw;
  const hint = target.explicit
    ? 'Check TEMPORAL_ADDRESS (and TLS/API-key settings) or that the server is up.'
    : "Start the embedded stack with 'weft up', or set TEMPORAL_ADDRESS to a running server.";
  return `Cannot connect to Temporal at ${target.address} (namespace '${target.namespace}'): ${reason}. ${hint}`;
}
