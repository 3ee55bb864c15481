import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BACKENDS } from '../lineage/support/test-backends';
import { startFixture, TEST_TOKEN, type WeaveServerFixture } from '../weave/support/weave-server-fixture';
import { graphqlRequest, requireSdkVenv, startWandbServe } from './support/wandb-fixture';

/** W&B's API in weft serve refuses bad input in W&B's error shape (`{"errors": [{"message"}]}`) and stores nothing. */
describe.each(BACKENDS)('the W&B API of weft serve on bad input, on %s', (backend) => {
  let fixture: WeaveServerFixture;
  const gql = (query: string, variables: Record<string, unknown> = {}, token = TEST_TOKEN) =>
    graphqlRequest(fixture.server.url, query, variables, token);
  const post = async (urlPath: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
    const response = await fetch(`${fixture.server.url}${urlPath}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_TOKEN}` },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    fixture = await startFixture(backend);
  });

  afterAll(async () => {
    await fixture?.dispose();
  });

  it('answers a wrong token with 401 and a message naming the fix', async () => {
    const answer = await gql('query Viewer { viewer { id entity } }', {}, 'not-the-token');
    expect(answer.status).toBe(401);
    expect(answer.body.errors![0]!.message).toMatch(/wrong token: send WEFT_SERVE_TOKEN as the W&B API key/);
  });

  it('answers malformed GraphQL and unknown fields with 400 and what is wrong', async () => {
    const malformed = await gql('query Viewer { viewer { id ');
    expect(malformed.status).toBe(400);
    expect(malformed.body.errors![0]!.message).toMatch(/^Malformed GraphQL: Syntax Error/);
    const unknown = await gql('query Sweeps { sweeps { edges { node { id } } } }');
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors![0]!.message).toMatch(/Cannot query field "sweeps" on type "Query"/);
    const missingVariable = await gql('query ArtifactByID($id: ID!) { artifact(id: $id) { id } }');
    expect(missingVariable.body.errors![0]!.message).toMatch(/Variable "\$id" of required type "ID!" was not provided/);
  });

  it('refuses registry paths of an unknown organization, creating nothing', async () => {
    const before = await fixture.store.counts();
    const read = await gql(
      `query ArtifactMembershipByName($entity: String!, $project: String!, $name: String!) {
         project(name: $project, entityName: $entity) { artifactCollectionMembership(name: $name) { id } } }`,
      { entity: 'nosuchorg', project: 'wandb-registry-RAG Models', name: 'RAG Model:production' },
    );
    expect(read.body.errors![0]!.message).toMatch(
      /Unknown organization "nosuchorg".*use weft\/wandb-registry-RAG Models/,
    );
    const link = await gql(
      'mutation LinkArtifact($input: LinkArtifactInput!) { linkArtifact(input: $input) { versionIndex } }',
      {
        input: {
          artifactID: Buffer.from('Artifact:anything').toString('base64'),
          entityName: 'nosuchorg',
          projectName: 'wandb-registry-RAG Models',
          artifactPortfolioName: 'RAG Model',
        },
      },
    );
    expect(link.body.errors![0]!.message).toMatch(
      /unknown organization "nosuchorg"; this server's organization is "weft"/,
    );
    expect(await fixture.store.counts()).toEqual(before);
  });

  it('refuses an upload whose bytes do not match its MD5, keeps nothing of it, and will not commit without it', async () => {
    const created = await gql(
      'mutation CreateArtifact($input: CreateArtifactInput!) { createArtifact(input: $input) { artifact { id state } } }',
      {
        input: {
          entityName: 'weft',
          projectName: 'rag-demo',
          artifactTypeName: 'model',
          artifactCollectionName: 'weights',
          digest: 'd',
          aliases: [{ alias: 'latest', artifactCollectionName: 'weights' }],
        },
      },
    );
    const artifact = (created.body.data!.createArtifact as { artifact: { id: string; state: string } }).artifact;
    expect(artifact.state).toBe('PENDING');
    const declared = crypto.createHash('md5').update('the real weights').digest('base64');
    const files = await gql(
      `mutation CreateArtifactFiles($input: CreateArtifactFilesInput!) {
         createArtifactFiles(input: $input) { files { edges { node { uploadUrl } } } } }`,
      { input: { artifactFiles: [{ artifactID: artifact.id, name: 'weights.bin', md5: declared }] } },
    );
    const uploadUrl = (files.body.data!.createArtifactFiles as { files: { edges: { node: { uploadUrl: string } }[] } })
      .files.edges[0]!.node.uploadUrl;
    // The upload URL is signed: no Authorization header, like a storage bucket's signed URL.
    const upload = await fetch(uploadUrl, { method: 'PUT', body: 'corrupted weights' });
    expect(upload.status).toBe(400);
    expect(((await upload.json()) as { errors: { message: string }[] }).errors[0]!.message).toMatch(
      new RegExp(`issued for ${declared.replace(/[+/]/g, '\\$&')}; nothing was stored`),
    );
    const tampered = await fetch(uploadUrl.replace(/sig=[0-9a-f]/, 'sig=x'), {
      method: 'PUT',
      body: 'the real weights',
    });
    expect(tampered.status).toBe(401);
    const staging = path.join(path.dirname(fixture.store.blobDirectory), 'wandb-staging');
    const staged = fs.existsSync(staging) ? fs.readdirSync(staging, { recursive: true, withFileTypes: true }) : [];
    expect(staged.filter((entry) => entry.isFile())).toEqual([]);

    const manifest = {
      version: 1,
      storagePolicy: 'wandb-storage-policy-v1',
      storagePolicyConfig: { storageLayout: 'V2' },
      contents: { 'weights.bin': { digest: declared, size: 16 } },
    };
    const manifestUpload = await gql(
      `mutation CreateArtifactManifest($input: CreateArtifactManifestInput!) {
         createArtifactManifest(input: $input) { artifactManifest { file { uploadUrl } } } }`,
      { input: { artifactID: artifact.id } },
    );
    const manifestUrl = (
      manifestUpload.body.data!.createArtifactManifest as { artifactManifest: { file: { uploadUrl: string } } }
    ).artifactManifest.file.uploadUrl;
    expect((await fetch(manifestUrl, { method: 'PUT', body: JSON.stringify(manifest) })).status).toBe(200);
    const before = await fixture.store.counts();
    const commit = await gql(
      'mutation CommitArtifact($artifactID: ID!) { commitArtifact(input: {artifactID: $artifactID}) { artifact { id } } }',
      { artifactID: artifact.id },
    );
    expect(commit.body.errors![0]!.message).toMatch(/"weights.bin" .* was never uploaded; nothing was committed/);
    expect(await fixture.store.counts()).toEqual(before);

    // The same bytes as declared go through, and then the commit makes one version.
    expect((await fetch(uploadUrl, { method: 'PUT', body: 'the real weights' })).status).toBe(200);
    const committed = await gql(
      'mutation CommitArtifact($artifactID: ID!) { commitArtifact(input: {artifactID: $artifactID}) { artifact { id state } } }',
      { artifactID: artifact.id },
    );
    expect(committed.body.errors).toBeUndefined();
    const version = await fixture.store.artifacts.get('wandb-artifact:///weft/rag-demo/weights:latest');
    expect(version.manifest).toEqual([
      {
        path: 'weights.bin',
        digest: crypto.createHash('sha256').update('the real weights').digest('hex'),
        size: 16,
      },
    ]);
  });

  it('keeps feedback that arrives before its call, and attaches it when the call lands', async () => {
    const callId = crypto.randomUUID();
    const ref = `weave:///weft/rag-demo/call/${callId}`;
    const feedback = await post('/feedback/batch/create', {
      batch: [
        {
          id: crypto.randomUUID(),
          project_id: 'weft/rag-demo',
          weave_ref: ref,
          feedback_type: 'wandb.runnable.exact_match',
          payload: { output: { correct: true } },
        },
      ],
    });
    expect(feedback.status).toBe(200);
    expect(await fixture.store.calls.feedback(ref).catch(() => [])).toEqual([]);
    const now = new Date().toISOString();
    const complete = await post('/v2/weft/rag-demo/calls/complete', {
      batch: [
        {
          id: callId,
          project_id: 'weft/rag-demo',
          trace_id: crypto.randomUUID(),
          op_name: 'weave:///weft/rag-demo/op/predict:abc',
          started_at: now,
          ended_at: now,
          inputs: { question: 'q' },
          output: 'a',
          attributes: {},
          summary: {},
        },
      ],
    });
    expect(complete.status).toBe(200);
    const attached = await fixture.store.calls.feedback(ref);
    expect(attached.map((item) => [item.type, item.payload])).toEqual([
      ['wandb.runnable.exact_match', { output: { correct: true } }],
    ]);
    const [pending] = await fixture.store.database.query<{ count: number }>(
      'SELECT COUNT(*) AS count FROM pending_feedback',
    );
    expect(Number(pending!.count)).toBe(0);
  });

  it('refuses a v2 call whose project differs from the one in its path', async () => {
    const answer = await post('/v2/weft/other-project/call/start', {
      start: {
        project_id: 'weft/rag-demo',
        id: crypto.randomUUID(),
        op_name: 'weave:///weft/rag-demo/op/evaluate:abc',
        started_at: new Date().toISOString(),
      },
    });
    expect(answer.status).toBe(400);
    expect(answer.body.detail).toMatch(/differs from the project in the path \(weft\/other-project\)/);
  });
});

describe('the wandb SDK with a wrong API key', () => {
  it('fails at wandb.login() with an authentication error, before anything is written', async () => {
    requireSdkVenv();
    const fixture = await startWandbServe();
    try {
      const run = await fixture.python('login_only.py', { WANDB_API_KEY: 'x'.repeat(40) });
      expect(run.code).toBe(0);
      expect(run.result).toMatchObject({ error: 'AuthenticationError' });
      expect(fixture.log()).toMatch(/POST \/graphql → 401/);
      expect((await fixture.store.counts()).runs).toBe(0);
    } finally {
      await fixture.dispose();
    }
  });
});
