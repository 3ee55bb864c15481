/**
 * The GraphQL operations weft sends to W&B: the mutations the wandb SDK sends for `wandb.init`, `log_artifact`,
 * `link_artifact` and `aliases.append` (input types as W&B names them), and the reads that make each write
 * idempotent. Written for weft against the fields W&B's schema (and `weft serve`) provide.
 */

export const viewerQuery = /* GraphQL */ `
  query WeftViewer {
    viewer {
      id
      entity
    }
  }
`;

export const upsertRunMutation = /* GraphQL */ `
  mutation WeftUpsertRun($input: UpsertBucketInput!) {
    upsertBucket(input: $input) {
      bucket {
        id
        name
        displayName
      }
      inserted
    }
  }
`;

export const artifactByNameQuery = /* GraphQL */ `
  query WeftArtifactByName($entityName: String!, $projectName: String!, $name: String!) {
    project(entityName: $entityName, name: $projectName) {
      artifact(name: $name) {
        id
        state
        digest
        versionIndex
      }
    }
  }
`;

export const artifactByIdQuery = /* GraphQL */ `
  query WeftArtifactById($id: ID!) {
    artifact(id: $id) {
      id
      state
      digest
      versionIndex
    }
  }
`;

export const createArtifactMutation = /* GraphQL */ `
  mutation WeftCreateArtifact($input: CreateArtifactInput!) {
    createArtifact(input: $input) {
      artifact {
        id
        state
        digest
        versionIndex
      }
    }
  }
`;

export const createArtifactFilesMutation = /* GraphQL */ `
  mutation WeftCreateArtifactFiles($input: CreateArtifactFilesInput!) {
    createArtifactFiles(input: $input) {
      files {
        edges {
          node {
            name
            uploadUrl
            uploadHeaders
          }
        }
      }
    }
  }
`;

export const createArtifactManifestMutation = /* GraphQL */ `
  mutation WeftCreateArtifactManifest($input: CreateArtifactManifestInput!) {
    createArtifactManifest(input: $input) {
      artifactManifest {
        id
        file {
          uploadUrl
          uploadHeaders
        }
      }
    }
  }
`;

export const commitArtifactMutation = /* GraphQL */ `
  mutation WeftCommitArtifact($input: CommitArtifactInput!) {
    commitArtifact(input: $input) {
      artifact {
        id
        state
        digest
        versionIndex
      }
    }
  }
`;

export const linkArtifactMutation = /* GraphQL */ `
  mutation WeftLinkArtifact($input: LinkArtifactInput!) {
    linkArtifact(input: $input) {
      versionIndex
    }
  }
`;

/** The member an alias of a registry collection points at, with the artifact's own aliases (the RagModel digest). */
export const collectionAliasQuery = /* GraphQL */ `
  query WeftCollectionAlias($entityName: String!, $projectName: String!, $collection: String!, $alias: String!) {
    project(entityName: $entityName, name: $projectName) {
      artifactCollection(name: $collection) {
        artifactMembership(aliasName: $alias) {
          versionIndex
          artifact {
            id
            metadata
          }
        }
      }
    }
  }
`;

export const addAliasesMutation = /* GraphQL */ `
  mutation WeftAddAliases($input: AddAliasesInput!) {
    addAliases(input: $input) {
      success
    }
  }
`;

export interface RemoteArtifact {
  id: string;
  state: string;
  digest: string;
  versionIndex: number | null;
}
