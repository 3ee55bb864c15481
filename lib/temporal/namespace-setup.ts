import type { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { weftSearchAttributeDefinitions } from '../../workflows/contracts/search-attributes';
import type { TemporalTarget } from './connection';

type SearchAttributeTypeName = (typeof weftSearchAttributeDefinitions)[string];
const IndexedValueType = temporal.api.enums.v1.IndexedValueType;

const indexedValueTypeOf: Record<SearchAttributeTypeName, temporal.api.enums.v1.IndexedValueType> = {
  Keyword: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  Double: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  Bool: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
};

/** How long a namespace weft registers keeps closed runs (the Temporal CLI's default). */
export const namespaceRetentionSeconds = 72 * 3600;

/** gRPC NOT_FOUND, however the client wraps it. */
function isNotFound(error: unknown): boolean {
  return (error as { code?: number }).code === 5;
}

/** True when the namespace exists on the server. */
export async function namespaceExists(connection: Connection, namespace: string): Promise<boolean> {
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

export interface SearchAttributeProblem {
  name: string;
  want: SearchAttributeTypeName;
  /** The type the server has under that name, when it has one of another type. */
  found?: string;
}

/** weft's search attributes that the namespace lacks (or has with another type). */
export async function searchAttributeProblems(
  connection: Connection,
  namespace: string,
): Promise<SearchAttributeProblem[]> {
  const listed = await connection.operatorService.listSearchAttributes({ namespace });
  const custom = listed.customAttributes ?? {};
  const problems: SearchAttributeProblem[] = [];
  for (const [name, want] of Object.entries(weftSearchAttributeDefinitions)) {
    const found = custom[name];
    if (found === undefined || found === null) problems.push({ name, want });
    else if (found !== indexedValueTypeOf[want]) {
      const typeName = IndexedValueType[found] ?? String(found);
      problems.push({ name, want, found: typeName.replace('INDEXED_VALUE_TYPE_', '') });
    }
  }
  return problems;
}

/** The Temporal CLI command that registers one search attribute (what `weft doctor` tells a person to run). */
export function searchAttributeCreateCommand(target: Pick<TemporalTarget, 'address' | 'namespace'>, name: string) {
  const type = weftSearchAttributeDefinitions[name];
  return `temporal operator search-attribute create --address ${target.address} --namespace ${target.namespace} --name ${name} --type ${type}`;
}

/** The Temporal CLI command that registers the namespace. */
export function namespaceCreateCommand(target: Pick<TemporalTarget, 'address' | 'namespace'>) {
  return `temporal operator namespace create --address ${target.address} --namespace ${target.namespace} --retention 72h`;
}

export interface NamespaceSetupReport {
  namespace: string;
  namespaceCreated: boolean;
  searchAttributesCreated: string[];
}

/**
 * Registers the namespace (when missing) and weft's custom search attributes (those missing) on a Temporal
 * server: the one place their list lives is workflows/contracts/search-attributes.ts, which scripts/temporal-cluster.ts
 * and docker-compose.yml's `temporal-namespace` service both run through this function. A search attribute that
 * exists with another type is an error naming it (Temporal cannot change a type in place). Idempotent.
 */
export async function ensureNamespaceAndSearchAttributes(
  connection: Connection,
  namespace: string,
  timeoutMilliseconds = 60_000,
): Promise<NamespaceSetupReport> {
  let namespaceCreated = false;
  if (!(await namespaceExists(connection, namespace))) {
    try {
      await connection.workflowService.registerNamespace({
        namespace,
        workflowExecutionRetentionPeriod: msToTs(namespaceRetentionSeconds * 1000),
      });
      namespaceCreated = true;
    } catch (error) {
      // ALREADY_EXISTS: another setup registered it in the meantime.
      if ((error as { code?: number }).code !== 6) throw error;
    }
  }
  // A namespace just registered reaches the frontend's cache within seconds; until then its APIs answer NOT_FOUND.
  const deadline = Date.now() + timeoutMilliseconds;
  let problems: SearchAttributeProblem[] | undefined;
  for (;;) {
    try {
      problems = await searchAttributeProblems(connection, namespace);
      break;
    } catch (error) {
      if (!isNotFound(error) || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  const wrongType = problems.filter((problem) => problem.found !== undefined);
  if (wrongType.length > 0) {
    throw new Error(
      `Namespace '${namespace}' has search attributes of another type than weft needs: ` +
        wrongType.map((problem) => `${problem.name} is ${problem.found}, weft needs ${problem.want}`).join('; ') +
        '. Temporal cannot change a type in place: use another namespace (TEMPORAL_NAMESPACE).',
    );
  }
  if (problems.length > 0) {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(problems.map((problem) => [problem.name, indexedValueTypeOf[problem.want]])),
    });
  }
  return { namespace, namespaceCreated, searchAttributesCreated: problems.map((problem) => problem.name) };
}
