/**
 * Renders test/fixtures/v2-vectors.json as docs/PROTOCOL-V2-VECTORS.md. Pure (no addon, no
 * generation): scripts/v2-vectors.ts writes its output, test/protocol/v2-vectors.test.ts checks
 * that the document in the repository is exactly that.
 */

/** Hex digits a line in code blocks (32 bytes). */
export const HEX_LINE = 64;

/** String fields that hold text; every other string is lowercase hex. */
const TEXT_KEYS = new Set([
  'title', 'generator', 'inputDerivation', 'labelPrefix', 'name', 'groupName', 'suiteName', 'auth', 'resumes', 'what', 'from', 'innerType', 'text', 'label', 'fingerprint', 'publicKeyText',
  'verificationTime', 'subject', 'issuer', 'notBefore', 'notAfter', 'keyUsage', 'extendedKeyUsage', 'dnsName', 'pem',
]);

/** Text fields too long for a line of prose: a code block, as their lines (a public key's text form, a PEM certificate). */
const TEXT_BLOCK_KEYS = new Set(['publicKeyText', 'pem']);

const SECTION_TITLES: Readonly<Record<string, string>> = {
  inputs: 'Inputs',
  psk: 'External PSK',
  identityKeys: 'Long-term identity keys (pinned keys, §13.1)',
  resumption: 'The ticket offered',
  clientHello: 'ClientHello',
  serverHello: 'ServerHello',
  hybrid: 'Hybrid secret K (combiner)',
  schedule: 'Early and handshake secrets, handshake traffic keys',
  serverFlight: 'Server flight: EncryptedExtensions and Finished (epoch 1)',
  serverFlightCertificates: 'Server flight: EncryptedExtensions, Certificate, CertificateVerify and Finished (epoch 1)',
  serverFlightCertificateRequest: 'Server flight: EncryptedExtensions, CertificateRequest, Certificate, CertificateVerify and Finished (epoch 1)',
  application: 'Master secret and application secrets',
  clientFlight: 'Client flight: Finished (epoch 1)',
  clientFlightCertificates: 'Client flight: Certificate, CertificateVerify and Finished (epoch 1)',
  epoch2: 'Epoch 2: first application traffic keys',
  ticket: 'NewSessionTicket and ticket PSK',
  epoch3: 'Epoch 3: symmetric KeyUpdate (started by the client)',
  kemUpdate: 'KEM KeyUpdate to epoch 4 (started by the server): hybrid secret',
  epoch4: 'Epoch 4: traffic keys after the KEM KeyUpdate',
  records: 'Records, in order',
  exporter: 'Exporter',
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(v: Json | undefined): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isDerivedInput(v: Json | undefined): v is { shake: string; hex: string } {
  return isObject(v) && Object.keys(v).length === 2 && typeof v.shake === 'string' && typeof v.hex === 'string';
}

function checkHex(key: string, value: string): void {
  if (!/^(?:[0-9a-f]{2})*$/.test(value)) throw new Error(`${key}: not lowercase hex: ${value.slice(0, 40)}`);
}

function bytes(value: string): string {
  const n = value.length / 2;
  return `${n} byte${n === 1 ? '' : 's'}`;
}

/** A hex value as a list item: inline up to one line, else a code block under the item. */
function hexItem(indent: string, label: string, value: string): string[] {
  if (value.length === 0) return [`${indent}- ${label} (0 bytes): empty`];
  if (value.length <= HEX_LINE) return [`${indent}- ${label} (${bytes(value)}): \`${value}\``];
  const lines: string[] = [`${indent}- ${label} (${bytes(value)}):`, '', `${indent}  \`\`\``];
  for (let i = 0; i < value.length; i += HEX_LINE) lines.push(`${indent}  ${value.slice(i, i + HEX_LINE)}`);
  lines.push(`${indent}  \`\`\``, '');
  return lines;
}

/** The fields of an object as a (nested) list. */
function fieldList(obj: JsonObject, indent = '', skip: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(obj)) {
    if (skip.includes(key)) continue;
    const label = `\`${key}\``;
    if (isDerivedInput(value)) {
      checkHex(key, value.hex);
      out.push(...hexItem(indent, `${label} = SHAKE-256("${value.shake}")`, value.hex));
    } else if (isObject(value)) {
      out.push(`${indent}- ${label}:`);
      out.push(...fieldList(value, `${indent}  `));
    } else if (Array.isArray(value)) {
      throw new Error(`${key}: an array inside a field list`);
    } else if (typeof value === 'string') {
      if (TEXT_BLOCK_KEYS.has(key)) {
        const textLines = value.replace(/\n$/, '').split('\n');
        out.push(`${indent}- ${label} (${value.length} characters):`, '', `${indent}  \`\`\``, ...textLines.map((l) => `${indent}  ${l}`), `${indent}  \`\`\``, '');
      }
      else if (TEXT_KEYS.has(key)) out.push(`${indent}- ${label}: "${value}"`);
      else {
        checkHex(key, value);
        out.push(...hexItem(indent, label, value));
      }
    } else if (value === null) {
      out.push(`${indent}- ${label}: absent`);
    } else {
      out.push(`${indent}- ${label}: ${String(value)}`);
    }
  }
  return out;
}

/** Collapses runs of blank lines (a code block item followed by a blank line and a heading). */
function tidy(lines: string[]): string {
  const out: string[] = [];
  for (const line of lines) {
    if (line === '' && out.at(-1) === '') continue;
    out.push(line);
  }
  while (out.at(-1) === '') out.pop();
  return `${out.join('\n')}\n`;
}

function section(lines: string[], level: number, title: string): void {
  if (lines.at(-1) !== '') lines.push('');
  lines.push(`${'#'.repeat(level)} ${title}`, '');
}

/** The section a part of a case gets: the flights name the certificate messages they hold. */
function sectionKey(key: string, value: Json): string {
  if (!isObject(value)) return key;
  if (key === 'serverFlight' && value.serverCertificate !== undefined) return value.certificateRequest !== undefined ? 'serverFlightCertificateRequest' : 'serverFlightCertificates';
  if (key === 'clientFlight' && value.clientCertificate !== undefined) return 'clientFlightCertificates';
  return key;
}

const CERTIFICATE_TITLES: Readonly<Record<string, string>> = { ca: 'The CA (trust anchor)', server: 'The server\'s certificate', client: 'The client\'s certificate' };

function renderCase(lines: string[], c: JsonObject, index: number): void {
  section(lines, 2, `B.${index}. ${c.name as string}`);
  const head: JsonObject = {};
  for (const [k, v] of Object.entries(c)) if (!isObject(v)) head[k] = v;
  lines.push(...fieldList(head));
  section(lines, 3, SECTION_TITLES.inputs!);
  lines.push(...fieldList(c.inputs as JsonObject));
  for (const part of ['handshake', 'session'] as const) {
    const obj = c[part] as JsonObject;
    for (const [key, value] of Object.entries(obj)) {
      const title = SECTION_TITLES[sectionKey(key, value)] ?? key;
      section(lines, 3, `${part === 'handshake' ? 'Handshake' : 'Session'}: ${title}`);
      if (key === 'records') {
        (value as JsonObject[]).forEach((r, i) => {
          section(lines, 4, `Record ${i + 1}: ${r.what as string} (${r.from as string}, epoch ${String(r.epoch)}, seq ${String(r.seq)})`);
          lines.push(...fieldList(r, '', ['what']));
        });
      } else if (key === 'exporter') {
        (value as JsonObject[]).forEach((e, i) => {
          const context = e.context === null ? 'no context' : `context ${e.context === '' ? 'empty' : `"${Buffer.from(e.context as string, 'hex').toString('latin1')}"`}`;
          section(lines, 4, `Export ${i + 1}: "${e.label as string}", ${context}, ${String(e.length)} bytes`);
          lines.push(...fieldList(e));
        });
      } else {
        lines.push(...fieldList(value as JsonObject));
      }
    }
  }
}

/** docs/PROTOCOL-V2-VECTORS.md for a parsed v2-vectors.json. */
export function renderV2Vectors(doc: JsonObject): string {
  const comment = doc.$comment as JsonObject;
  const fields = comment.fields as Record<string, string>;
  const cases = doc.cases as JsonObject[];
  const lines: string[] = [
    `# ${doc.title as string}`,
    '',
    '<!-- Generated by scripts/v2-vectors.ts (npm run vectors:v2) from test/fixtures/v2-vectors.json: do not edit.',
    '     test/protocol/v2-vectors.test.ts checks that this page is exactly what the generator renders. -->',
    '',
    'Known-answer vectors for protocol v2: for every hybrid group and every authentication mode (none, an external PSK, resumption',
    'with a ticket, a pinned server key, pinned keys both ways, a server certificate, certificates both ways), a complete handshake',
    'from fixed inputs, every secret of the key schedule, the traffic keys and IVs, every handshake message and the records of both',
    'flights, then the same session script: a NewSessionTicket, data both ways, Ping and Pong, a symmetric KeyUpdate, a KEM',
    'KeyUpdate, data in each new epoch, close_notify, and exporter outputs. Nothing is truncated. The same values, with the same',
    'field names, are in `test/fixtures/v2-vectors.json`.',
    '',
    'Every value was computed three ways that agree: the specification followed step by step over the library\'s primitives, the',
    'same steps over an independent reference (node:crypto and @noble/post-quantum), and the library\'s real handshake and session',
    'state machines (every byte on the wire, the secrets a handshake hands to its session, the tickets and the exporter).',
    '`test/protocol/v2-vectors.test.ts` reproduces all of them.',
    '',
    '## Conventions',
    '',
    `- Byte strings are lowercase hex; values longer than ${HEX_LINE / 2} bytes are in code blocks, ${HEX_LINE} hex digits (${HEX_LINE / 2} bytes) a line.`,
    '- `‖` is concatenation; `BE16`/`BE24`/`BE32`/`BE64` big-endian integers; `vec8(x)`/`vec16(x)`/`vec24(x)` = x with a 1/2/3-byte',
    '  big-endian length in front.',
    '- Hash = SHA-384, HKDF = HKDF-SHA-384. `HKDF-Expand-Label(S, L, C, n) = HKDF-Expand(S, BE16(n) ‖ vec8("qtun2 " ‖ L) ‖ vec8(C), n)`,',
    '  `Derive-Secret(S, L, M) = HKDF-Expand-Label(S, L, SHA-384(M), 48)`; "" as messages means SHA-384 of nothing.',
    '- A record is `30 ‖ BE32(2 + |sealed|) ‖ BE16(epoch) ‖ sealed`, the 7 header bytes its AD; the nonce is',
    '  `iv XOR (0^4 ‖ BE64(seq))`; the sealed plaintext is `content ‖ inner type` (these vectors use no padding).',
    '- `seq` counts the records of one direction in one epoch from 0; it is not on the wire.',
    '',
    '## How the inputs are derived',
    '',
    doc.inputDerivation as string,
    '',
    'In every case the client offers the case\'s cipher suite first and the other one second, and the case\'s group first (its key',
    'share is for that group) and the two other groups after it; the server accepts both suites and all three groups and picks the',
    'client\'s first. A resumption case offers only the ticket issued in the session of the case named in `resumes` (same group),',
    'as its single PSK identity. The external PSK case offers only the PSK identity; its obfuscated ticket age is 0.',
    '',
    'The pinned-key cases (docs/PROTOCOL.md §13) come next. Their long-term keys are of the case\'s group, each made from a classical',
    'private key and an ML-KEM seed derived like the other inputs. In `key` the client pins the server\'s key (by its text form) and',
    'seals an empty identity; the server holds that key and no list of clients, and does not authenticate the client. In',
    '`key-mutual` the client also seals its own key blob; the server admits it by its fingerprint (and requires a client key) and',
    'answers with an encapsulation to it in its ServerHello. Each encapsulation to a long-term key has its own fixed inputs (a fresh',
    'classical private key and the ML-KEM message m), listed with the case\'s inputs.',
    '',
    'The certificate cases (§14) follow, in x25519-mlkem1024 and in p384-mlkem1024 (the FIPS mode default: they also run in strict',
    'FIPS mode). Their certificates are common to all of them and listed under "Certificates" below: a self-signed ML-DSA-87 CA that',
    'issued a server certificate (subjectAltName dNSName `vector.server.test`, extendedKeyUsage serverAuth) and a client certificate',
    '(clientAuth), each key `ML-DSA.KeyGen_internal(ξ)` of a seed derived like every input. Issuing a certificate draws a hedged',
    'signature, so they were made once and are kept in `test/fixtures/v2-vector-certificates.json`; the generator reads them, checks',
    'that each holds the key of its seed, and validates both chains (RFC 5280) at `verificationTime`, by hand and with the library. In',
    '`certificate` the client sends `certificate_auth` listing ML-DSA-87, trusts the CA and expects the name `vector.server.test`; the',
    'server sends its Certificate (the leaf alone) and CertificateVerify after EncryptedExtensions; the client stays anonymous. In',
    '`certificate-mutual` the server also sends an empty CertificateRequest before its Certificate, requires a client certificate from',
    'the same CA, and the client answers with its Certificate and CertificateVerify before its Finished. The CertificateVerify',
    'signatures are deterministic ML-DSA-87 (rnd = 0^32) so that they reproduce; endpoints sign hedged, and any valid signature',
    'verifies. Each derivation makes them with its own ML-DSA-87 (the reference with @noble/post-quantum) and verifies them, as it',
    'verifies the certificates\' signatures, with the public key it read from the certificate\'s DER. The state machines validate',
    'the chains at the current time (their certificate policies take no time): the certificates are valid from 2026 to the end of',
    '2049.',
    '',
    '## The session script',
    '',
    'After each handshake the two ends exchange these records, each delivered before the next is made:',
    '',
  ];
  const first = cases[0]!;
  ((first.session as JsonObject).records as JsonObject[]).forEach((r, i) => {
    lines.push(`${i + 1}. ${r.from === 'client' ? 'client → server' : 'server → client'}, under epoch ${String(r.epoch)}: ${r.what as string}`);
  });
  lines.push(
    '',
    'The pinned-key and certificate cases skip record 1: sessions authenticated by keys or certificates get no tickets (§13.5,',
    '§14.4), so their records start with the client\'s data.',
    '',
    'The symmetric KeyUpdate ratchets both traffic secrets: `next = HKDF-Expand-Label(secret, "traffic upd", "", 48)`. The KEM',
    'KeyUpdate carries a fresh hybrid key share of the session\'s group, `classical pk ‖ ek` in the key_update and `classical pk ‖ ct`',
    'in the key_update_ack; its K comes from the same combiner with the requester as the initiator, and each new secret is',
    '`HKDF-Extract(salt = HKDF-Expand-Label(secret, "traffic upd", "", 48), IKM = K)`. The requester keeps sending under the old epoch',
    'until the acknowledgement; the responder sends the acknowledgement under the old epoch and switches right after it.',
    '',
    '## Cases',
    '',
    '| | Case | Group | Suite | Authentication |',
    '|---|---|---|---|---|',
  );
  cases.forEach((c, i) => lines.push(`| B.${i + 1} | ${c.name as string} | 0x${c.group as string} ${c.groupName as string} | 0x${c.suite as string} ${c.suiteName as string} | ${c.auth as string} |`));
  lines.push('', '## Fields', '', `${comment.about as string}`, '', '| Field | Meaning |', '|---|---|');
  for (const [path, meaning] of Object.entries(fields)) lines.push(`| \`${path}\` | ${meaning.replace(/\|/g, '\\|')} |`);
  section(lines, 2, 'Common inputs');
  const { certificates, ...global } = doc.global as JsonObject;
  lines.push(...fieldList(global));
  if (isObject(certificates)) {
    section(lines, 2, 'Certificates (the certificate cases, §14)');
    const { verificationTime, ...each } = certificates;
    lines.push(...fieldList({ verificationTime: verificationTime ?? null }));
    for (const [role, cert] of Object.entries(each)) {
      section(lines, 3, CERTIFICATE_TITLES[role] ?? role);
      lines.push(...fieldList(cert as JsonObject));
    }
  }
  cases.forEach((c, i) => renderCase(lines, c, i + 1));
  return tidy(lines);
}
