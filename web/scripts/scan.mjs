// Scans the built bundle (web/dist) for secret-like material and checks the first-load size.
//
// Fails on: PEM headers, AWS access key ids, JWT-shaped strings, `private_key`, a pepper or
// secret assignment with a value, long base64 blobs, source maps, inline scripts or styles in
// index.html (CSP), and any value of the secrets named in the environment (IMS_JWT_SIGNING_KEYS,
// IMS_OTP_PEPPER, IMS_SMTP_PASSWORD, IMS_DATABASE_PASSWORD, IMS_AI_API_KEY, or the files their
// *_FILE variants name, plus SCAN_SECRETS="a,b,c"). Then prints the gzipped size of what the
// first page load fetches (index.html, its entry script, its modulepreloads and CSS) and fails
// above 250 KB (override with MAX_FIRST_LOAD_KB).
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(web, 'dist');
const limitKb = Number(process.env.MAX_FIRST_LOAD_KB ?? 250);
const problems = [];

if (!existsSync(join(dist, 'index.html'))) {
  console.error('scan: no dist/index.html; run `npm run build` first');
  process.exit(1);
}

function files(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

const PATTERNS = [
  [/-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE|RSA|EC|OPENSSH)[A-Z ]*-----/, 'PEM block'],
  [/\b(AKIA|ASIA)[0-9A-Z]{16}\b/, 'AWS access key id'],
  [/\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/, 'JWT'],
  [/private_key/i, '`private_key`'],
  [/aws_secret_access_key|secret_access_key/i, 'AWS secret key name'],
  [/\b(pepper|secret|password|api[_-]?key)\s*[:=]\s*["'][^"'\s]{8,}["']/i, 'a secret-looking assignment with a value'],
  [/(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/]{120,}={0,2}(?![A-Za-z0-9+/=])/, 'a long base64 blob'],
];

function envSecrets() {
  const names = ['JWT_SIGNING_KEYS', 'OTP_PEPPER', 'SMTP_PASSWORD', 'DATABASE_PASSWORD', 'AI_API_KEY'];
  const out = [];
  for (const n of names) {
    const v = process.env[`IMS_${n}`];
    if (v) out.push([n, v]);
    const f = process.env[`IMS_${n}_FILE`];
    if (f && existsSync(f)) out.push([n, readFileSync(f, 'utf8').replace(/\n$/, '')]);
  }
  for (const v of (process.env.SCAN_SECRETS ?? '').split(',').filter(Boolean)) out.push(['SCAN_SECRETS', v]);
  // For a JSON document (the signing keys), every long string inside it counts too.
  const expanded = [];
  for (const [n, v] of out) {
    expanded.push([n, v]);
    try {
      JSON.stringify(JSON.parse(v), (_k, x) => {
        if (typeof x === 'string' && x.length >= 16) expanded.push([n, x]);
        return x;
      });
    } catch {
      /* not JSON */
    }
  }
  return expanded.filter(([, v]) => v.length >= 8);
}

const secrets = envSecrets();
const all = files(dist);
for (const f of all) {
  const rel = relative(dist, f);
  if (rel.endsWith('.map')) problems.push(`${rel}: source map shipped`);
  const buf = readFileSync(f);
  const text = buf.toString('latin1');
  for (const [re, what] of PATTERNS) {
    const m = text.match(re);
    if (m) problems.push(`${rel}: ${what} at offset ${m.index}: ${m[0].slice(0, 40)}…`);
  }
  for (const [name, value] of secrets) {
    if (text.includes(value)) problems.push(`${rel}: contains the value of secret ${name}`);
  }
}

// CSP: index.html may not carry inline scripts, inline styles or style attributes.
const html = readFileSync(join(dist, 'index.html'), 'utf8');
for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
  if (!/\bsrc=/.test(m[1]) || m[2].trim()) problems.push('index.html: inline <script> (blocked by script-src \'self\')');
}
if (/<style\b/i.test(html)) problems.push('index.html: inline <style> (blocked by style-src \'self\')');
if (/\sstyle=/i.test(html)) problems.push('index.html: style attribute (blocked by style-src \'self\')');
if (/\son[a-z]+=/i.test(html)) problems.push('index.html: inline event handler');
// The JS must not evaluate strings (CSP has no 'unsafe-eval').
for (const f of all.filter((p) => p.endsWith('.js'))) {
  const t = readFileSync(f, 'utf8');
  if (/\beval\(|new Function\(/.test(t)) problems.push(`${relative(dist, f)}: eval or new Function (needs 'unsafe-eval')`);
}

// First load: index.html plus the scripts, preloads and stylesheets it references.
const firstLoad = ['index.html'];
for (const m of html.matchAll(/(?:src|href)="\/([^"]+\.(?:js|css))"/g)) firstLoad.push(m[1]);
let gz = 0;
const rows = [];
for (const rel of firstLoad) {
  const size = gzipSync(readFileSync(join(dist, rel)), { level: 9 }).length;
  gz += size;
  rows.push(`  ${rel.padEnd(40)} ${(size / 1024).toFixed(1).padStart(7)} KB gzip`);
}
const lazy = all
  .filter((p) => p.endsWith('.js') && !firstLoad.includes(relative(dist, p)))
  .map((p) => gzipSync(readFileSync(p), { level: 9 }).length)
  .reduce((a, b) => a + b, 0);
console.log(`First load (gzip):\n${rows.join('\n')}\n  total ${(gz / 1024).toFixed(1)} KB (limit ${limitKb} KB); lazy role chunks ${(lazy / 1024).toFixed(1)} KB more`);
if (gz > limitKb * 1024) problems.push(`first load is ${(gz / 1024).toFixed(1)} KB gzipped, over ${limitKb} KB`);

if (problems.length) {
  console.error(`\nscan FAILED:\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
console.log(`scan: ${all.length} files in dist, no secret-like material${secrets.length ? `, none of ${secrets.length} environment secret values` : ''}; CSP-safe index.html`);
