import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../lib/config/config';
import { openVectorStore } from '../../lib/vectors';

describe('openVectorStore', () => {
  it('opens the embedded store for a path and the Qdrant adapter for a URL', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-open-vectors-'));
    try {
      const embedded = await openVectorStore({ path: path.join(directory, 'vectors.db') });
      expect(embedded.kind).toBe('sqlite-vec');
      await embedded.close();
      expect(fs.existsSync(path.join(directory, 'vectors.db'))).toBe(true);
      const remote = await openVectorStore({ url: 'http://127.0.0.1:6333', path: path.join(directory, 'unused.db') });
      expect(remote.kind).toBe('qdrant');
      expect(fs.existsSync(path.join(directory, 'unused.db'))).toBe(false);
    } finally {
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });

  it('rejects a URL that is not http(s) with a configuration error', async () => {
    await expect(openVectorStore({ url: 'localhost:6333' })).rejects.toThrow(ConfigError);
    await expect(openVectorStore({ url: '' })).rejects.toThrow(/Invalid Qdrant URL ""/);
  });
});
