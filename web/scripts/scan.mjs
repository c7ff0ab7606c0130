// Scans the built bundle (web/dist) for secret-like material and checks the first-load size.
//
// Fails on: PEM headers, AWS access key ids, JWT-shaped strings, `private_key`, a pepper,
// secret, password, api key or token assignment with a literal value (`SMTP_PASSWORD:"…"`,
// `"password":"…"`, `dbPassword=\`…\``), long base64 blobs, source maps, inline scripts or styles
// in index.html (CSP), and any value of the secrets named in the environment
// (IMS_JWT_SIGNING_KEYS, IMS_OTP_PEPPER, IMS_SMTP_PASSWORD, IMS_DATABASE_PASSWORD, IMS_AI_API_KEY,
// or the files their *_FILE variants name, plus SCAN_SECRETS="a,b,c" and SCAN_CANARIES="a,b,c").
// Then prints the gzipped size of what the first page load fetches (index.html, its entry script,
// its modulepreloads and CSS) and fails above 250 KB (override with MAX_FIRST_LOAD_KB).
// Findings name the pattern, the file and the offset only: the matched text is never printed
// (it may be a real secret, and CI logs are widely readable).
//
//   node scripts/scan.mjs --self-test   plants each kind of secret in a temporary bundle and
//                                       checks the scan flags it, and that a clean bundle passes
//   SCAN_CANARIES=generate node scripts/scan.mjs
//                                       builds the app again into a temporary directory with
//                                       random canary values in every IMS_* secret variable
//                                       (and VITE_* copies) of the build's environment, then
//                                       fails if any canary reaches that bundle. Unset: no
//                                       change. A comma-separated list is scanned for as values.
import { readdirSync, readFileSync, statSync, existsSync, mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const limitKb = Number(process.env.MAX_FIRST_LOAD_KB ?? 250);
const SECRET_NAMES = ['JWT_SIGNING_KEYS', 'OTP_PEPPER', 'SMTP_PASSWORD', 'DATABASE_PASSWORD', 'AI_API_KEY'];

function files(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

// A name ending in pepper/secret/password/passwd/api key/token (any case, any prefix such as
// SMTP_, db, "…" quotes), then ':' or '=', then a quoted literal of 8+ non-space characters.
// No \b: `SMTP_PASSWORD`, `dbPassword` and `OTP_PEPPER` must match.
const ASSIGNMENT = /(pepper|secret|password|passwd|api[_-]?key|token)["'`]?\s*[:=]\s*(["'`])([^"'`\s]{8,})\2/gi;

/**
 * The app's own legitimate code names these things too: form field names and labels
 * (`password:"new_password"`, `token:"access_token"`, `password:"Password"`). A value that is a
 * plain word (letters, '_', '-', '.') containing the key word itself is such a name, not a secret.
 */
function isName(key, value) {
  const k = key.toLowerCase().replace(/[_-]/g, '');
  return /^[A-Za-z_.-]+$/.test(value) && value.toLowerCase().replace(/[_-]/g, '').includes(k);
}

const PATTERNS = [
  [/-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE|RSA|EC|OPENSSH)[A-Z ]*-----/, 'PEM block'],
  [/\b(AKIA|ASIA)[0-9A-Z]{16}\b/, 'AWS access key id'],
  [/\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/, 'JWT'],
  [/private_key/i, '`private_key`'],
  [/aws_secret_access_key|secret_access_key/i, 'AWS secret key name'],
  [/(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/]{120,}={0,2}(?![A-Za-z0-9+/=])/, 'a long base64 blob'],
];

function envSecrets(env) {
  const out = [];
  for (const n of SECRET_NAMES) {
    const v = env[`IMS_${n}`];
    if (v) out.push([n, v]);
    const f = env[`IMS_${n}_FILE`];
    if (f && existsSync(f)) out.push([n, readFileSync(f, 'utf8').replace(/\n$/, '')]);
  }
  for (const v of (env.SCAN_SECRETS ?? '').split(',').filter(Boolean)) out.push(['SCAN_SECRETS', v]);
  if (env.SCAN_CANARIES && env.SCAN_CANARIES !== 'generate') {
    for (const v of env.SCAN_CANARIES.split(',').filter(Boolean)) out.push(['SCAN_CANARIES', v]);
  }
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

/** Secret-like material in every file of `dir`. Messages never include the matched text. */
function scanSecrets(dir, secrets) {
  const problems = [];
  for (const f of files(dir)) {
    const rel = relative(dir, f);
    if (rel.endsWith('.map')) problems.push(`${rel}: source map shipped`);
    const text = readFileSync(f).toString('latin1');
    for (const [re, what] of PATTERNS) {
      const m = text.match(re);
      if (m) problems.push(`${rel}: ${what} at offset ${m.index}`);
    }
    for (const m of text.matchAll(ASSIGNMENT)) {
      if (isName(m[1], m[3])) continue;
      problems.push(`${rel}: a secret-looking assignment with a value (${m[1].toLowerCase()}) at offset ${m.index}`);
      break;
    }
    for (const [name, value] of secrets) {
      if (text.includes(value)) problems.push(`${rel}: contains the value of secret ${name}`);
    }
  }
  return problems;
}

/** CSP checks of index.html and the JS. */
function scanCsp(dir) {
  const problems = [];
  const html = readFileSync(join(dir, 'index.html'), 'utf8');
  for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
    if (!/\bsrc=/.test(m[1]) || m[2].trim()) problems.push('index.html: inline <script> (blocked by script-src \'self\')');
  }
  if (/<style\b/i.test(html)) problems.push('index.html: inline <style> (blocked by style-src \'self\')');
  if (/\sstyle=/i.test(html)) problems.push('index.html: style attribute (blocked by style-src \'self\')');
  if (/\son[a-z]+=/i.test(html)) problems.push('index.html: inline event handler');
  // The JS must not evaluate strings (CSP has no 'unsafe-eval').
  for (const f of files(dir).filter((p) => p.endsWith('.js'))) {
    const t = readFileSync(f, 'utf8');
    if (/\beval\(|new Function\(/.test(t)) problems.push(`${relative(dir, f)}: eval or new Function (needs 'unsafe-eval')`);
  }
  return problems;
}

// ---- self-test: every listed kind of secret is flagged; a clean bundle passes -------------------

function selfTest() {
  const planted = [
    ['SMTP password object', '{SMTP_PASSWORD:"hunter2hunter2"}'],
    ['pepper assignment', 'const OTP_PEPPER="abcdefghijkl";'],
    ['AI api key', '{AI_API_KEY:"sk-live-0123456789abcdef"}'],
    ['camelCase password', 'x={dbPassword:"Tr0ub4dor&3x"}'],
    ['JSON password', '{"password":"correct-horse-battery"}'],
    ['backtick value', 'const secret=`s3cr3t-v4lue-xyz`;'],
    ['backtick password', 'let dbPasswd = `9f8e7d6c5b4a`;'],
    ['token', "e={refresh_token:'R1aB2cD3eF4gH5'}"],
    ['PEM block', '"-----BEGIN PRIVATE KEY-----\\nMIIE"'],
    ['AWS key id', '"AKIAABCDEFGHIJKLMNOP"'],
    ['JWT', '"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlLXZhbHVl"'],
    ['base64 blob', `"${Buffer.alloc(120, 7).toString('base64')}"`],
  ];
  // What the app's own code legitimately contains: names and labels, values held in variables.
  const clean = [
    'body:JSON.stringify({current_password:a,new_password:b})',
    '{name:"new_password",type:"password",autoComplete:"current-password"}',
    '{password:"Password",token:"access_token",label:"New password"}',
    'const t=e.reset_token;h.set("authorization",`Bearer ${t}`)',
    'msg:"Your password was changed. Sign in with the new password."',
  ].join(';\n');
  const fails = [];
  const root = mkdtempSync(join(tmpdir(), 'ims-scan-selftest-'));
  try {
    const make = (name, js) => {
      const d = join(root, name);
      mkdirSync(join(d, 'assets'), { recursive: true });
      writeFileSync(join(d, 'index.html'), '<!doctype html><script type="module" src="/assets/index.js"></script>');
      writeFileSync(join(d, 'assets', 'index.js'), js);
      return d;
    };
    const cleanProblems = scanSecrets(make('clean', clean), []).concat(scanCsp(join(root, 'clean')));
    if (cleanProblems.length) fails.push(`clean bundle flagged: ${cleanProblems.join('; ')}`);
    planted.forEach(([what, js], i) => {
      const d = make(`planted-${i}`, `${clean};\n${js};`);
      const found = scanSecrets(d, []);
      if (!found.length) fails.push(`not flagged: ${what}`);
      // The report must not echo the secret.
      const value = [...js.matchAll(/["'`]([^"'`]{8,})["'`]/g)].pop()?.[1] ?? '';
      if (value && found.some((p) => p.includes(value))) fails.push(`report prints the value of: ${what}`);
    });
    // Environment values and canaries are found wherever they appear.
    const canary = `canary-${randomBytes(12).toString('hex')}`;
    const d = make('canary', `${clean};\nconst x=${JSON.stringify(canary.split('').reverse().join(''))}.split("").reverse().join("")+"${canary}";`);
    if (!scanSecrets(d, envSecrets({ SCAN_CANARIES: canary })).some((p) => p.includes('SCAN_CANARIES'))) fails.push('canary value not flagged');
    if (!scanSecrets(d, envSecrets({ IMS_OTP_PEPPER: canary })).some((p) => p.includes('OTP_PEPPER'))) fails.push('IMS_OTP_PEPPER value not flagged');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  if (fails.length) {
    console.error(`scan self-test FAILED:\n- ${fails.join('\n- ')}`);
    process.exit(1);
  }
  console.log(`scan self-test: ${planted.length} planted secrets flagged, a canary and an environment value flagged, a clean bundle passes`);
}

// ---- canaries: build with random secret values in the environment, none may reach the bundle ---

function canaryBuild() {
  const out = mkdtempSync(join(tmpdir(), 'ims-scan-canary-'));
  const env = { ...process.env };
  const canaries = [];
  for (const n of SECRET_NAMES) {
    const v = `canary${n.toLowerCase()}${randomBytes(16).toString('hex')}`;
    env[`IMS_${n}`] = v;
    env[`VITE_${n}`] = v;
    canaries.push(v);
  }
  delete env.SCAN_CANARIES;
  try {
    const r = spawnSync(process.execPath, [join(web, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--outDir', out, '--emptyOutDir', '--logLevel', 'error'], { cwd: web, env, encoding: 'utf8' });
    if (r.status !== 0) return [`canary build failed: ${(r.stderr || r.stdout).trim().slice(0, 400)}`];
    const found = scanSecrets(out, envSecrets({ SCAN_CANARIES: canaries.join(',') })).filter((p) => p.includes('SCAN_CANARIES'));
    console.log(`scan: canary build with ${canaries.length} generated secret values in its environment: ${found.length ? 'LEAKED' : 'none in the bundle'}`);
    return found;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

// ---- main ---------------------------------------------------------------------------------------

if (process.argv.includes('--self-test')) {
  selfTest();
  process.exit(0);
}

const dist = join(web, 'dist');
if (!existsSync(join(dist, 'index.html'))) {
  console.error('scan: no dist/index.html; run `npm run build` first');
  process.exit(1);
}
const secrets = envSecrets(process.env);
const all = files(dist);
const problems = [...scanSecrets(dist, secrets), ...scanCsp(dist)];
if (process.env.SCAN_CANARIES === 'generate') problems.push(...canaryBuild());

// First load: index.html plus the scripts, preloads and stylesheets it references.
const html = readFileSync(join(dist, 'index.html'), 'utf8');
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
