/**
 * The provider's site file (CLI.md "The site file"): its fabric of clouds, host groups, hosts,
 * networks, storage classifications and VMs. Validated like config (unknown keys refused) and
 * for references: a name that points at no declared host group, cloud, logical network, VM
 * network, subnet, classification or host is refused with the line at fault.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SecondsiteError } from '../../../common/errors/errors.ts';
import { jsonLines, lineOf, lineOfOffset, type LineMap } from './json-lines.ts';
import { checkReferences } from './site-references.ts';
import { siteSchema, type SiteFile } from './site-schema.ts';

export type { SiteFile } from './site-schema.ts';

export interface Site {
  readonly path: string;
  readonly file: SiteFile;
}

function siteError(path: string, line: number, at: string, message: string): SecondsiteError {
  return new SecondsiteError('SS_BAD_INPUT', `site: ${path} line ${line}: ${message}`, {
    field: 'site',
    path,
    line,
    at,
  });
}

/** Parses and validates the site text; `path` only names the file in errors. */
export function parseSite(text: string, path: string): Site {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    const pos = /position (\d+)/.exec((e as Error).message)?.[1];
    const line = pos === undefined ? 1 : lineOfOffset(text, Number(pos));
    throw siteError(path, line, '', `not valid JSON (${(e as Error).message})`);
  }
  const lines: LineMap = jsonLines(text);
  const parsed = siteSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = [...(issue?.path ?? [])].map(String);
    if (issue?.code === 'unrecognized_keys') at.push(issue.keys[0] ?? '');
    const where = at.join('.') || 'the document';
    throw siteError(path, lineOf(lines, at), where, `${where}: ${issue?.message ?? 'invalid'}`);
  }
  const bad = checkReferences(parsed.data);
  if (bad !== undefined) {
    throw siteError(path, lineOf(lines, bad.at), bad.at.join('.'), bad.message);
  }
  return { path, file: parsed.data };
}

export function loadSite(path: string): Site {
  const abs = resolve(path);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (e) {
    throw new SecondsiteError(
      'SS_BAD_INPUT',
      `site: cannot read ${abs} (${(e as NodeJS.ErrnoException).code ?? e})`,
      {
        field: 'site',
        path: abs,
      },
    );
  }
  return parseSite(text, abs);
}
