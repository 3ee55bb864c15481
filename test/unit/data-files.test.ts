import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DataFileError, readJsonObjectLines, readUtf8Text } from '../../lib/common/data-files';
import { readCorpus } from '../../lib/rag';

function tempFile(name: string, content: string | Buffer): string {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-data-files-'));
  const file = path.join(folder, name);
  fs.writeFileSync(file, content);
  return file;
}

describe('data files are read strictly (finding: data files)', () => {
  it('invalid UTF-8 is an error naming the file, line and byte offset, never replaced', () => {
    const good = '{"question": "Où?", "answer": "a", "doc_id": "d"}\n';
    const file = tempFile(
      'qa.jsonl',
      Buffer.concat([Buffer.from(good), Buffer.from('{"question": "caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]),
    );
    const offset = Buffer.byteLength(good) + '{"question": "caf'.length;
    expect(() => readJsonObjectLines(file, 'row')).toThrow(DataFileError);
    expect(() => readJsonObjectLines(file, 'row')).toThrow(
      `${file}:2 has the byte 0xe9, which is not valid UTF-8 at byte offset ${offset}`,
    );
  });

  it('overlong and surrogate encodings are refused; a byte-order mark and 4-byte characters are fine', () => {
    expect(() => readUtf8Text(tempFile('a.txt', Buffer.from([0xc0, 0xaf])))).toThrow(/0xc0/);
    expect(() => readUtf8Text(tempFile('b.txt', Buffer.from([0xed, 0xa0, 0x80])))).toThrow(/0xed/);
    expect(readUtf8Text(tempFile('c.txt', Buffer.from('\uFEFFclimate 🌍', 'utf8')))).toBe('climate 🌍');
  });

  it('a null or non-object JSONL line is rejected with file:line', () => {
    const file = tempFile('corpus.jsonl', '{"id": "a", "text": "x"}\n\nnull\n');
    expect(() => readJsonObjectLines(file, '{"id", "title", "text"}')).toThrow(
      `${file}:3 is null, not an object; each line holds one {"id", "title", "text"}.`,
    );
    expect(() => readJsonObjectLines(tempFile('list.jsonl', '[1, 2]\n'), 'row')).toThrow(/:1 is a list, not an object/);
  });

  it('ingest refuses a binary .txt instead of ingesting it as a document', () => {
    const bytes = Buffer.alloc(4096);
    for (let index = 0; index < bytes.length; index += 1) bytes[index] = (index * 7919 + 13) % 256;
    const file = tempFile('random.txt', bytes);
    expect(() => readCorpus(file)).toThrow(/must be UTF-8 text/);
    const nul = tempFile('nul.txt', Buffer.from('text\u0000more'));
    expect(() => readCorpus(nul)).toThrow(`${nul}:1 has a NUL byte (a binary file, not text) at byte offset 4`);
  });
});
