import type { LineageStore } from '../lineage';
import { selectWandbRemote } from './config';
import { WandbUnavailableError } from './errors';
import { WandbPublisher } from './publisher';

/**
 * The publisher a process uses, from its environment: undefined when W&B is not configured. A misconfiguration
 * (a missing variable, a key the server rejects) throws with the variable to fix; a server that is down only warns
 * (publishing retries when it is back).
 */
export async function openWandbPublisher(
  store: LineageStore,
  environment: NodeJS.ProcessEnv,
  defaults: { project: string },
  logger: { info(message: string): void; warn(message: string): void },
): Promise<WandbPublisher | undefined> {
  const selection = selectWandbRemote(environment, defaults);
  if (selection.notice) logger.warn(selection.notice);
  if (!selection.config) return undefined;
  const publisher = new WandbPublisher(store, selection.config);
  const { baseUrl, entity, project, org } = selection.config;
  try {
    const user = await publisher.checkAccess();
    logger.info(`Publishing into W&B at ${baseUrl} as ${user}: ${entity}/${project}, registries of ${org}`);
  } catch (error) {
    if (!(error instanceof WandbUnavailableError)) throw error;
    logger.warn(`${error.message} Publishing into W&B waits for it.`);
  }
  return publisher;
}
