import fs from 'node:fs';

/** A data file a user gave (corpus, QA set) is unreadable as text or JSON lines: fix the file, retrying cannot help. */
export class DataFileError extends Error {
  readonly retryable = false;
  constructor(message: string) {
    super(message);
    this.name = 'DataFileError';
  }
}

/** Byte offset of the first byte that is not part of a well-formed UTF-8 sequence, or -1 when all of it is. */
export function firstInvalidUtf8Offset(bytes: Uint8Array): number {
  let index = 0;
  while (index < bytes.length) {
    const lead = bytes[index];
    if (lead < 0x80) {
      index += 1;
      continue;
    }
    // Sequence length and the allowed range of the second byte (no overlongs, no surrogates, ≤ U+10FFFF).
    let length: number;
    let low = 0x80;
    let high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) length = 2;
    else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead === 0xe0) low = 0xa0;
      if (lead === 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead === 0xf0) low = 0x90;
      if (lead === 0xf4) high = 0x8f;
    } else return index;
    if (index + length > bytes.length) return index;
    if (bytes[index + 1] < low || bytes[index + 1] > high) return index;
    for (let next = 2; next < length; next += 1) {
      if (bytes[index + next] < 0x80 || bytes[index + next] > 0xbf) return index;
    }
    index += length;
  }
  return -1;
}

/**
 * A file's text, decoded strictly: invalid UTF-8 is an error naming the file, the line and the byte offset,
 * never replaced by U+FFFD and silently used. A NUL byte marks a binary file, refused as such.
 */
export function readUtf8Text(file: string, what = 'text'): string {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new DataFileError(`${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`);
  }
  const offset = firstInvalidUtf8Offset(bytes);
  const nul = bytes.indexOf(0);
  if (offset >= 0 || nul >= 0) {
    const at = offset >= 0 && (nul < 0 || offset < nul) ? offset : nul;
    let line = 1;
    for (let index = 0; index < at; index += 1) if (bytes[index] === 0x0a) line += 1;
    const problem =
      at === nul
        ? 'a NUL byte (a binary file, not text)'
        : `the byte 0x${bytes[at].toString(16).padStart(2, '0')}, which is not valid UTF-8`;
    throw new DataFileError(
      `${file}:${line} has ${problem} at byte offset ${at}; ${what} must be UTF-8 text. Convert the file ` +
        '(e.g. iconv -f latin1 -t utf-8) or remove it.',
    );
  }
  // A UTF-8 byte-order mark is allowed and dropped.
  return bytes.toString('utf8').replace(/^\uFEFF/, '');
}

/**
 * The lines of a JSON-lines file, each a JSON object, with their line numbers; blank lines are skipped.
 * A line that is not JSON, or is JSON but not an object (`null`, a list, a number), is an error naming file:line.
 */
export function readJsonObjectLines(
  file: string,
  rowShape: string,
): { line: number; value: Record<string, unknown> }[] {
  const rows: { line: number; value: Record<string, unknown> }[] = [];
  readUtf8Text(file, 'a JSON-lines file')
    .split('\n')
    .forEach((text, index) => {
      if (text.trim() === '') return;
      const line = index + 1;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        throw new DataFileError(`${file}:${line} is not valid JSON; each line holds one ${rowShape}.`);
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        const found = value === null ? 'null' : Array.isArray(value) ? 'a list' : `a ${typeof value}`;
        throw new DataFileError(`${file}:${line} is ${found}, not an object; each line holds one ${rowShape}.`);
      }
      rows.push({ line, value: value as Record<string, unknown> });
    });
  return rows;
}
