/**
 * A host's replication bandwidth setting (R22) and its text and wire forms, shared by the
 * coordinator (which parses the CLI's flags and stores it) and the host (which applies it).
 *
 * Units: MB/s is 10^6 bytes per second; the setting is in bytes/s. Windows are "HH:MM-HH:MM"
 * in the host's local time (end exclusive; a window whose end is before its start wraps past
 * midnight). Outside every window the default cap applies (`limit`, null = unlimited). The
 * first window containing the time wins. Pure.
 */
import { badInput } from '../errors/errors.ts';
import type { BandwidthSettingMsg } from './host-control-messages.ts';

export type Priority = 'high' | 'normal' | 'low';
export const PRIORITIES: readonly Priority[] = ['high', 'normal', 'low'];

export interface BandwidthWindow {
  /** Minutes after local midnight, [start, end). */
  readonly start: number;
  readonly end: number;
  /** Bytes per second inside the window; null = unlimited. */
  readonly bytesPerSecond: number | null;
}

export interface BandwidthSetting {
  /** Bytes per second outside the windows; null = unlimited. */
  readonly limit: number | null;
  readonly windows: readonly BandwidthWindow[];
  /** VM name → priority; VMs not named are 'normal'. */
  readonly priorities: Readonly<Record<string, Priority>>;
}

export const UNLIMITED: BandwidthSetting = Object.freeze({
  limit: null,
  windows: [],
  priorities: {},
});

export const MB = 1_000_000;

/** "HH:MM" → minutes after midnight (bad input names the field). */
export function parseClock(text: string, field: string): number {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text.trim());
  const h = Number(m?.[1]);
  const min = Number(m?.[2]);
  if (!m || h > 24 || min > 59 || (h === 24 && min !== 0)) {
    throw badInput(field, `"${text}" is not a time of day (HH:MM, e.g. 08:00)`);
  }
  return h * 60 + min;
}

/** A rate in MB/s ("20", "2.5") → bytes/s; "unlimited" → null. */
export function parseRate(text: string, field: string): number | null {
  if (text.trim().toLowerCase() === 'unlimited') return null;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw badInput(field, `"${text}" is not a rate in MB/s (a number above 0, or "unlimited")`);
  }
  return Math.round(n * MB);
}

/** "08:00-18:00=20" (MB/s, or "unlimited") → a window. */
export function parseWindow(text: string, field = 'window'): BandwidthWindow {
  const m = /^\s*([^-=]+)-([^=]+)=(.+)$/.exec(text);
  if (!m) throw badInput(field, `"${text}" is not HH:MM-HH:MM=MB/s (e.g. 08:00-18:00=20)`);
  const start = parseClock(m[1] ?? '', field);
  const end = parseClock(m[2] ?? '', field);
  if (start === end) throw badInput(field, `"${text}" is an empty window`);
  return { start, end, bytesPerSecond: parseRate(m[3] ?? '', field) };
}

export const hhmm = (min: number): string =>
  `${String(Math.floor(min / 60)).padStart(2, '0')}:${String(min % 60).padStart(2, '0')}`;
const rateText = (r: number | null): string => (r === null ? 'unlimited' : `${r / MB} MB/s`);

/** "08:00-18:00=20 MB/s" */
export function formatWindow(w: BandwidthWindow): string {
  return `${hhmm(w.start)}-${hhmm(w.end)}=${rateText(w.bytesPerSecond)}`;
}

/** "20 MB/s, 08:00-18:00=5 MB/s" */
export function describeSetting(s: Pick<BandwidthSetting, 'limit' | 'windows'>): string {
  return [rateText(s.limit), ...s.windows.map(formatWindow)].join(', ');
}

const rateOfMsg = (v: string | number | undefined): number | null => Number(v ?? 0) || null;

/** The wire form (host_control.proto BandwidthSetting; 0 = unlimited). */
export function settingToMsg(s: BandwidthSetting): BandwidthSettingMsg {
  return {
    limitBytesPerSecond: String(s.limit ?? 0),
    windows: s.windows.map((w) => ({
      start: hhmm(w.start),
      end: hhmm(w.end),
      bytesPerSecond: String(w.bytesPerSecond ?? 0),
    })),
    priorities: Object.entries(s.priorities)
      .filter(([, p]) => p !== 'normal')
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, priority]) => ({ name, priority })),
  };
}

/** From the wire form; bad fields are refused naming them (`field`.windows…). */
export function settingFromMsg(m: BandwidthSettingMsg, field = 'setBandwidth'): BandwidthSetting {
  const windows = (m.windows ?? []).map((w, i) => {
    const start = parseClock(w.start, `${field}.windows.${i}.start`);
    const end = parseClock(w.end, `${field}.windows.${i}.end`);
    if (start === end) throw badInput(`${field}.windows.${i}`, 'is an empty window');
    return { start, end, bytesPerSecond: rateOfMsg(w.bytesPerSecond) };
  });
  const priorities: Record<string, Priority> = {};
  for (const [i, p] of (m.priorities ?? []).entries()) {
    if (!(PRIORITIES as readonly string[]).includes(p.priority) || !p.name) {
      throw badInput(`${field}.priorities.${i}`, 'needs a VM name and high, normal or low');
    }
    priorities[p.name] = p.priority as Priority;
  }
  return { limit: rateOfMsg(m.limitBytesPerSecond), windows, priorities };
}
