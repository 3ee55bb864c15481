import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openVectorStore } from '../../lib/vectors';
import { describeVectorStoreContract } from './vector-store-contract';

const scratchDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-vectors-'));
afterAll(() => fs.rmSync(scratchDirectory, { recursive: true, force: true }));

describeVectorStoreContract('sqlite-vec', {
  openStore: () => openVectorStore({ path: path.join(scratchDirectory, 'vectors.db') }),
});

const qdrantUrl = process.env.QDRANT_URL;
if (qdrantUrl !== undefined && qdrantUrl !== '') {
  describeVectorStoreContract('qdrant', {
    openStore: () => openVectorStore({ url: qdrantUrl, apiKey: process.env.QDRANT_API_KEY }),
  });
} else {
  // No Qdrant tests are registered rather than skipped, so nothing is counted as passing without a server.
  // Written directly (not console.log) so it is one line, without jest's console decoration.
  process.stdout.write(
    'Qdrant contract run needs QDRANT_URL (e.g. http://localhost:6333); no Qdrant tests registered.\n',
  );
}
