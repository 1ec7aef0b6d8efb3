/**
 * The API names a bad field as the request spells it ("copyFrequency: …"); on the command line
 * the user typed a flag. This rewrites such a refusal to lead with the flag ("--copy-frequency:
 * …"), keeping the code, the field in details (scripts read that) and adding the flag.
 */
import { SecondsiteError, isSecondsiteError } from '../../common/errors/errors.ts';

export async function namingFlags<T>(
  flags: Readonly<Record<string, string>>,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!isSecondsiteError(e) || e.code !== 'SS_BAD_INPUT') throw e;
    const field = e.details['field'];
    const flag = typeof field === 'string' ? flags[field] : undefined;
    if (flag === undefined || typeof field !== 'string') throw e;
    const message = e.message.startsWith(`${field}: `)
      ? `${flag}: ${e.message.slice(field.length + 2)}`
      : `${flag}: ${e.message}`;
    throw new SecondsiteError(e.code, message, { ...e.details, flag }, { cause: e });
  }
}
