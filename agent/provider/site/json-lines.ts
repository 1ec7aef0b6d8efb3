/**
 * Line numbers for a JSON document's values, so site-file errors can name the line at fault
 * (STYLE.md rule 6). A small scanner walks the text once and records, for every value, the
 * line its key (or, in arrays, the value itself) starts on, keyed by path ("hosts.0.hostGroup").
 * Syntax errors are left to JSON.parse, whose position is turned into a line by lineOfOffset.
 */
export type LineMap = ReadonlyMap<string, number>;

export function lineOfOffset(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text[i] === '\n') line++;
  return line;
}

export function jsonLines(text: string): LineMap {
  const lines = new Map<string, number>();
  let i = 0;
  let line = 1;
  const skipWs = (): void => {
    while (i < text.length && /\s/.test(text[i] ?? '')) {
      if (text[i] === '\n') line++;
      i++;
    }
  };
  const readString = (): string => {
    const start = i;
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (path: string): void => {
    skipWs();
    const c = text[i];
    if (c === '{') {
      i++;
      for (;;) {
        skipWs();
        if (text[i] === '}' || i >= text.length) break;
        const keyLine = line;
        const key = readString();
        const child = path === '' ? key : `${path}.${key}`;
        lines.set(child, keyLine);
        skipWs();
        i++; // ':'
        value(child);
        skipWs();
        if (text[i] === ',') i++;
      }
      i++;
    } else if (c === '[') {
      i++;
      for (let n = 0; ; n++) {
        skipWs();
        if (text[i] === ']' || i >= text.length) break;
        lines.set(`${path}.${n}`, line);
        value(`${path}.${n}`);
        skipWs();
        if (text[i] === ',') i++;
      }
      i++;
    } else if (c === '"') {
      readString();
    } else {
      while (i < text.length && !/[\s,}\]]/.test(text[i] ?? '')) i++;
    }
  };
  value('');
  return lines;
}

/** The line of a path, else of its nearest recorded parent, else 1. */
export function lineOf(lines: LineMap, path: readonly (string | number)[]): number {
  for (let n = path.length; n > 0; n--) {
    const found = lines.get(path.slice(0, n).join('.'));
    if (found !== undefined) return found;
  }
  return 1;
}
