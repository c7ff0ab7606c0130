// Reads the one-time code from the newest .eml the server's file transport wrote for a recipient.
// Handles multipart bodies and quoted-printable / base64 transfer encodings.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

function decodeQP(s) {
  const bytes = [];
  const soft = s.replace(/=\r?\n/g, '');
  for (let i = 0; i < soft.length; i++) {
    const c = soft[i];
    if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      for (const b of Buffer.from(c, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function splitHead(part) {
  const m = part.match(/\r?\n\r?\n/);
  if (!m) return { head: part, body: '' };
  return { head: part.slice(0, m.index), body: part.slice(m.index + m[0].length) };
}

function header(head, name) {
  const unfolded = head.replace(/\r?\n[ \t]+/g, ' ');
  const m = unfolded.match(new RegExp(`^${name}:\\s*(.*)$`, 'im'));
  return m ? m[1].trim() : '';
}

function decodeBody(head, body) {
  const enc = header(head, 'Content-Transfer-Encoding').toLowerCase();
  if (enc === 'quoted-printable') return decodeQP(body);
  if (enc === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return body;
}

/** The text parts of a message, plain text first. */
export function textParts(raw) {
  const { head, body } = splitHead(raw);
  const type = header(head, 'Content-Type');
  const boundary = type.match(/boundary="?([^";]+)"?/i)?.[1];
  if (!boundary) return [decodeBody(head, body)];
  const parts = body.split(`--${boundary}`).slice(1).filter((p) => !p.startsWith('--'));
  const out = [];
  for (const p of parts) {
    const inner = splitHead(p.replace(/^\r?\n/, ''));
    const t = header(inner.head, 'Content-Type').toLowerCase();
    if (t.startsWith('multipart/')) out.push(...textParts(p.replace(/^\r?\n/, '')));
    else if (t.startsWith('text/plain')) out.unshift(decodeBody(inner.head, inner.body));
    else if (t.startsWith('text/')) out.push(decodeBody(inner.head, inner.body));
  }
  return out;
}

/** Newest message to `recipient` written at or after `sinceMs`, or null. */
export function newestMailTo(dir, recipient, sinceMs) {
  let files;
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.eml'));
  } catch {
    return null;
  }
  const candidates = files
    .map((f) => ({ f, m: statSync(join(dir, f)).mtimeMs }))
    .filter((x) => x.m >= sinceMs - 1000)
    .sort((a, b) => b.m - a.m);
  for (const { f } of candidates) {
    const raw = readFileSync(join(dir, f), 'utf8');
    const to = header(splitHead(raw).head, 'To');
    if (to.toLowerCase().includes(recipient.toLowerCase())) return raw;
  }
  return null;
}

export function codeFrom(raw) {
  for (const text of textParts(raw)) {
    const m = text.match(/(?<!\d)\d{6}(?!\d)/);
    if (m) return m[0];
  }
  return null;
}

export async function waitForCode(dir, recipient, sinceMs, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const raw = newestMailTo(dir, recipient, sinceMs);
    const code = raw && codeFrom(raw);
    if (code) return code;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no email with a 6-digit code reached ${recipient} within ${timeoutMs / 1000} s (looked in ${dir})`);
}
