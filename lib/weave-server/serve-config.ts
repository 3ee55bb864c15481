import { z } from 'zod';
import { ServeConfigurationError } from './errors';

/** `weft serve`'s own settings, read once from the environment (zod at the edge, as lib/config does for the rest). */
const serveEnvironmentSchema = z.object({
  /** The secret Weave clients send as their W&B API key (WANDB_API_KEY); at least 8 characters. */
  WEFT_SERVE_TOKEN: z.string().min(8, 'must be at least 8 characters').optional(),
});

export interface ServeConfig {
  token: string;
}

export function parseServeConfig(environment: NodeJS.ProcessEnv): ServeConfig {
  // An empty value is an unset one: `WEFT_SERVE_TOKEN= weft serve` must not serve without a token.
  const parsed = serveEnvironmentSchema.safeParse({ WEFT_SERVE_TOKEN: environment.WEFT_SERVE_TOKEN || undefined });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
    throw new ServeConfigurationError(`Invalid weft serve configuration in the environment — ${problems}`);
  }
  if (parsed.data.WEFT_SERVE_TOKEN === undefined) {
    throw new ServeConfigurationError(
      'WEFT_SERVE_TOKEN is not set. Choose a secret (e.g. `export WEFT_SERVE_TOKEN=$(openssl rand -hex 16)`), start `weft serve` with it, and give the same value to Weave clients as WANDB_API_KEY.',
    );
  }
  return { token: parsed.data.WEFT_SERVE_TOKEN };
}
