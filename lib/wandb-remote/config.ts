import { validateName } from '../lineage';
import { WandbConfigError } from './errors';

/** Where the pipeline publishes in W&B: the server, the key, and the entity/project/org it writes under. */
export interface WandbRemoteConfig {
  /** W&B's API base (GraphQL at `/graphql`, run files at `/files/…`), e.g. `https://<your W&B host>` or a `weft serve`. */
  baseUrl: string;
  /** The Weave trace server: WF_TRACE_SERVER_URL, else `<baseUrl>/traces` (where the weave SDK looks too). */
  traceServerUrl: string;
  apiKey: string;
  /** Runs, artifacts, objects and calls go to `<entity>/<project>`. */
  entity: string;
  project: string;
  /** Registries live under the organisation: `<org>/wandb-registry-<Registry>/<Collection>`. */
  org: string;
}

/** What the worker says when publishing stays off although W&B variables are set (so it is never off by accident). */
export interface WandbRemoteSelection {
  config: WandbRemoteConfig | undefined;
  notice?: string;
}

function validUrl(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new WandbConfigError(
      `${name}="${value}" is not a URL; set it to the W&B server, e.g. http://127.0.0.1:6345.`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new WandbConfigError(`${name}="${value}" must be an http:// or https:// URL.`);
  }
  return value.replace(/\/+$/, '');
}

function validName(variable: string, kind: Parameters<typeof validateName>[0], value: string): string {
  try {
    return validateName(kind, value);
  } catch (error) {
    throw new WandbConfigError(`${variable}="${value}" is not usable: ${(error as Error).message}`);
  }
}

/**
 * Publishing into W&B is on when WANDB_ENTITY is set; then WANDB_BASE_URL and WANDB_API_KEY are required and every
 * problem is named at once. WANDB_PROJECT defaults to the local project, WANDB_ORG to the entity.
 */
export function selectWandbRemote(environment: NodeJS.ProcessEnv, defaults: { project: string }): WandbRemoteSelection {
  const value = (name: string) => {
    const text = environment[name]?.trim();
    return text ? text : undefined;
  };
  const entity = value('WANDB_ENTITY');
  if (entity === undefined) {
    const set = ['WANDB_BASE_URL', 'WANDB_API_KEY', 'WANDB_ORG'].filter((name) => value(name) !== undefined);
    return {
      config: undefined,
      notice:
        set.length > 0
          ? `${set.join(' and ')} ${set.length > 1 ? 'are' : 'is'} set but WANDB_ENTITY is not: the pipeline publishes into ` +
            'the local store only. Set WANDB_ENTITY (with WANDB_BASE_URL and WANDB_API_KEY) to publish into W&B too.'
          : undefined,
    };
  }
  const problems: string[] = [];
  const attempt = <T>(check: () => T): T | undefined => {
    try {
      return check();
    } catch (error) {
      problems.push((error as Error).message);
      return undefined;
    }
  };
  const baseUrlText = value('WANDB_BASE_URL');
  const apiKey = value('WANDB_API_KEY');
  if (baseUrlText === undefined)
    problems.push('WANDB_BASE_URL is not set; set it to the W&B server the pipeline publishes into.');
  if (apiKey === undefined) problems.push('WANDB_API_KEY is not set; set it to an API key of that W&B server.');
  const baseUrl = baseUrlText === undefined ? undefined : attempt(() => validUrl('WANDB_BASE_URL', baseUrlText));
  const traceText = value('WF_TRACE_SERVER_URL');
  const traceServerUrl =
    traceText === undefined
      ? baseUrl === undefined
        ? undefined
        : `${baseUrl}/traces`
      : attempt(() => validUrl('WF_TRACE_SERVER_URL', traceText));
  const checkedEntity = attempt(() => validName('WANDB_ENTITY', 'entity', entity));
  const project = attempt(() => validName('WANDB_PROJECT', 'project', value('WANDB_PROJECT') ?? defaults.project));
  const org = attempt(() => validName('WANDB_ORG', 'org', value('WANDB_ORG') ?? entity));
  if (problems.length > 0) {
    throw new WandbConfigError(`Publishing into W&B (WANDB_ENTITY=${entity}) is misconfigured: ${problems.join(' ')}`);
  }
  return {
    config: {
      baseUrl: baseUrl!,
      traceServerUrl: traceServerUrl!,
      apiKey: apiKey!,
      entity: checkedEntity!,
      project: project!,
      org: org!,
    },
  };
}
