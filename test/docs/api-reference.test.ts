/**
 * The API reference (issue 13): typedoc, with the repository's typedoc.json, documents both
 * package entry points with no warning (every public export, member and option has TSDoc, no
 * link is broken, nothing public refers to an unexported type that is not listed as intended),
 * and the reference it builds holds the main entry points with their comments and examples.
 * `npm run docs:api` writes the same reference as HTML into docs/api; this test builds it in
 * memory only.
 */
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Application, Logger, LogLevel, normalizePath, type JSONOutput } from 'typedoc';
import { ErrorCode } from '../../lib/errors.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Keeps every warning and error typedoc reports, to show them when the test fails. */
class CapturingLogger extends Logger {
  readonly messages: string[] = [];
  override log(message: string, level: LogLevel): void {
    super.log(message, level);
    if (level >= LogLevel.Warn) this.messages.push(`${LogLevel[level]}: ${message}`);
  }
}

type Node = JSONOutput.SomeReflection | JSONOutput.SignatureReflection | JSONOutput.ProjectReflection;

/** Every reflection of the serialized project, with its dotted name (`index.crypto.x509`). */
function flatten(node: Node, prefix = '', out = new Map<string, Node>()): Map<string, Node> {
  const name = prefix ? `${prefix}.${node.name}` : node.name;
  out.set(name, node);
  for (const child of ('children' in node && node.children) || []) flatten(child, node.kind === 1 ? '' : name, out);
  // The members of an object type (a const object such as ErrorCode) sit under `<name>.__type`.
  const type = 'type' in node ? node.type : undefined;
  if (type?.type === 'reflection') for (const child of type.declaration.children ?? []) flatten(child, `${name}.__type`, out);
  return out;
}

/** The text of a comment's summary and block tags (code blocks included). */
function commentText(comment: JSONOutput.Comment | undefined): string {
  if (!comment) return '';
  const parts = [...comment.summary, ...(comment.blockTags ?? []).flatMap((t) => t.content)];
  return parts.map((p) => p.text).join('');
}

/** A function's comment lives on its signature. */
function docOf(node: Node | undefined): string {
  if (!node) return '';
  const own = 'comment' in node ? commentText(node.comment) : '';
  const sigs = 'signatures' in node && node.signatures ? node.signatures.map((s) => commentText(s.comment)) : [];
  return [own, ...sigs].join('\n');
}

describe('API reference (typedoc.json, npm run docs:api)', function () {
  // typedoc type-checks lib/ once: about 15 s of CPU.
  this.timeout(120_000);

  let logger: CapturingLogger;
  let names: Map<string, Node>;

  before(async () => {
    const app = await Application.bootstrapWithPlugins({ options: join(root, 'typedoc.json') });
    logger = new CapturingLogger();
    app.logger = logger;
    const project = await app.convert();
    expect(project, 'typedoc could not convert the project').to.not.equal(undefined);
    app.validate(project!);
    names = flatten(app.serializer.projectToObject(project!, normalizePath(root)));
  });

  it('reports no warning and no error with the configuration treating warnings as errors', () => {
    expect(logger.messages, logger.messages.join('\n')).to.deep.equal([]);
    expect(logger.errorCount + logger.warningCount).to.equal(0);
  });

  it('documents the main entry points, with examples and the errors they raise', () => {
    for (const name of ['index.listen', 'index.dial', 'index.createTunnelPool', 'index.fetchServerKey', 'index.startObservabilityServer']) {
      const doc = docOf(names.get(name));
      expect(doc, `${name} has no comment`).to.match(/\w{3,}/);
      expect(doc, `${name} has no example`).to.include('```ts');
      expect(doc, `${name} names no error code`).to.match(/ERR_QT_[A-Z_]+/);
    }
    expect(docOf(names.get('index.Tunnel'))).to.include('Duplex');
    expect(docOf(names.get('index.QuantumTunnelError'))).to.include('```ts');
  });

  it('documents every ErrorCode by its code, and the testing entry point', () => {
    const members = [...names.entries()].filter(([n]) => n.startsWith('index.ErrorCode.__type.'));
    expect(members.map(([n]) => n.slice('index.ErrorCode.__type.'.length)).sort()).to.deep.equal(Object.keys(ErrorCode).sort());
    for (const [name, node] of members) {
      const code = ErrorCode[name.split('.').pop() as keyof typeof ErrorCode];
      expect(docOf(node), `${name} is not documented by its code`).to.include(code);
    }
    expect(docOf(names.get('testing.exportSecret'))).to.match(/\w{3,}/);
  });

  it('leaves out what is marked @internal: the Duplex hooks and fips.testing', () => {
    expect(names.has('index.Tunnel._read')).to.equal(false);
    expect(names.has('index.Tunnel._write')).to.equal(false);
    expect(names.has('index.fips.testing')).to.equal(false);
    expect(names.has('index.fips.enable')).to.equal(true);
  });
});
