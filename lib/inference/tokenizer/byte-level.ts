/**
 * GPT-2's byte ↔ character table: every byte maps to a printable character so byte-level BPE vocabularies
 * are plain strings. Printable Latin-1 bytes map to themselves; the rest to U+0100 upwards.
 */
function buildByteTable(): { byteToCharacter: string[]; characterToByte: Map<string, number> } {
  const printable: number[] = [];
  for (let byte = 0x21; byte <= 0x7e; byte++) printable.push(byte);
  for (let byte = 0xa1; byte <= 0xac; byte++) printable.push(byte);
  for (let byte = 0xae; byte <= 0xff; byte++) printable.push(byte);
  const byteToCharacter: string[] = new Array<string>(256);
  let shifted = 0;
  for (let byte = 0; byte < 256; byte++) {
    if (printable.includes(byte)) byteToCharacter[byte] = String.fromCodePoint(byte);
    else byteToCharacter[byte] = String.fromCodePoint(256 + shifted++);
  }
  const characterToByte = new Map<string, number>();
  byteToCharacter.forEach((character, byte) => characterToByte.set(character, byte));
  return { byteToCharacter, characterToByte };
}

const { byteToCharacter, characterToByte } = buildByteTable();
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });

export function bytesToCharacters(text: string): string {
  let mapped = '';
  for (const byte of encoder.encode(text)) mapped += byteToCharacter[byte];
  return mapped;
}

/** Inverse of bytesToCharacters; characters outside the table (added tokens) pass through as their UTF-8. */
export function charactersToText(characters: string): string {
  const bytes: number[] = [];
  for (const character of characters) {
    const byte = characterToByte.get(character);
    if (byte !== undefined) bytes.push(byte);
    else bytes.push(...encoder.encode(character));
  }
  return decoder.decode(new Uint8Array(bytes));
}
