/**
 * The Helm chart (deploy/helm/quantum-tunnel) rendered by helm itself: `helm lint --strict`, then
 * `helm template` with the default values and with every option on. Each rendered object is checked
 * against the Kubernetes API schemas twice: kubernetes-models' validators (types, formats, required
 * fields) and the TypeScript compiler over its API types (excess-property checks catch a misspelt
 * field at any depth, which the validators, like the API server without strict validation, let
 * through). Then what the chart promises: probes on the metrics port, the drain grace, the config
 * checksum, the keys Secret, the selectors, FIPS, and a rendered config that `quantum-vpn
 * check-config` accepts.
 *
 * helm comes from QUANTUM_TUNNEL_HELM or PATH (scripts/helm.sh provides it; .ci/run sets it). Without
 * it these tests skip, except under CI, where a missing helm fails.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { CLI_ARGS } from '../cli/helpers.js';
import * as appsV1 from 'kubernetes-models/apps/v1';
import * as autoscalingV2 from 'kubernetes-models/autoscaling/v2';
import * as coreV1 from 'kubernetes-models/v1';
import * as policyV1 from 'kubernetes-models/policy/v1';
import ts from 'typescript';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHART = join(ROOT, 'deploy', 'helm', 'quantum-tunnel');

type Manifest = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: any; data?: Record<string, string> };

/** The kinds the chart renders: the model that validates each, and its API type for the compiler. */
const MODELS: Record<string, { validate: (m: Manifest) => void; type: string; from: string }> = {
  'v1/ConfigMap': { validate: (m) => new coreV1.ConfigMap(m as any).validate(), type: 'IConfigMap', from: 'kubernetes-models/v1/ConfigMap' },
  'v1/Service': { validate: (m) => new coreV1.Service(m as any).validate(), type: 'IService', from: 'kubernetes-models/v1/Service' },
  'apps/v1/Deployment': { validate: (m) => new appsV1.Deployment(m as any).validate(), type: 'IDeployment', from: 'kubernetes-models/apps/v1/Deployment' },
  'policy/v1/PodDisruptionBudget': { validate: (m) => new policyV1.PodDisruptionBudget(m as any).validate(), type: 'IPodDisruptionBudget', from: 'kubernetes-models/policy/v1/PodDisruptionBudget' },
  'autoscaling/v2/HorizontalPodAutoscaler': { validate: (m) => new autoscalingV2.HorizontalPodAutoscaler(m as any).validate(), type: 'IHorizontalPodAutoscaler', from: 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler' },
};

function findHelm(): string | undefined {
  if (process.env.QUANTUM_TUNNEL_HELM) return process.env.QUANTUM_TUNNEL_HELM;
  const found = spawnSync('sh', ['-c', 'command -v helm'], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

/** Every option the chart has, switched on (or away from its default). */
const EVERYTHING = [
  'keys.existingSecret=qt-keys', 'autoscaling.enabled=true', 'serviceMonitor.enabled=true', 'fips.enabled=true',
  'preStopDelaySeconds=5', 'service.type=LoadBalancer', 'service.externalTrafficPolicy=Local', 'drainTimeoutSeconds=30',
  'imagePullSecrets[0].name=registry', 'podAnnotations.team=platform', 'podLabels.tier=edge', 'serviceMonitor.labels.release=prom',
  'nodeSelector.kubernetes\\.io/os=linux', 'tolerations[0].key=dedicated', 'tolerations[0].operator=Exists', 'authorizedPeers=SHA256:abc',
];

describe('Helm chart, rendered by helm (deploy/helm/quantum-tunnel)', function () {
  this.timeout(60_000);
  let helm: string;

  before(function () {
    const found = findHelm();
    if (!found) {
      if (process.env.CI) throw new Error('CI needs helm: .ci/run sets QUANTUM_TUNNEL_HELM from scripts/helm.sh');
      this.skip(); // no helm here: `export QUANTUM_TUNNEL_HELM=$(bash scripts/helm.sh)` provides one
    }
    helm = found;
  });

  const run = (args: string[]) => spawnSync(helm, args, { encoding: 'utf8' });
  /** The objects `helm template` renders with these --set values, parsed as Kubernetes does (YAML 1.1: 0440 is octal). */
  function render(sets: string[], release = 'edge'): Manifest[] {
    const r = run(['template', release, CHART, ...sets.flatMap((s) => ['--set', s])]);
    expect(r.status, r.stderr).to.equal(0);
    return parseAllDocuments(r.stdout, { version: '1.1' }).map((d) => d.toJS() as Manifest).filter(Boolean);
  }
  const one = (objects: Manifest[], kind: string): Manifest => {
    const found = objects.filter((o) => o.kind === kind);
    expect(found, kind).to.have.length(1);
    return found[0]!;
  };

  it('helm lint --strict passes with the defaults and with every option on', () => {
    for (const sets of [['keys.existingSecret=qt-keys'], EVERYTHING]) {
      const r = run(['lint', CHART, '--strict', ...sets.flatMap((s) => ['--set', s])]);
      expect(r.status, r.stdout + r.stderr).to.equal(0);
      expect(r.stdout).to.include('1 chart(s) linted, 0 chart(s) failed');
    }
  });

  it('refuses to render without the keys Secret, and values that break values.schema.json', () => {
    const noSecret = run(['template', 'edge', CHART]);
    expect(noSecret.status).to.not.equal(0);
    expect(noSecret.stderr).to.include('keys.existingSecret: name the Secret');
    for (const bad of ['replicas=3', 'ports.tunnel=443', 'podSecurityContext.runAsNonRoot=false']) {
      const r = run(['template', 'edge', CHART, '--set', 'keys.existingSecret=k', '--set', bad]);
      expect(r.status, bad).to.not.equal(0);
      expect(r.stderr, bad).to.match(/values don't meet the specifications of the schema|schema/i);
    }
  });

  it('renders the expected objects: PDB on by default, HPA and ServiceMonitor on request', () => {
    expect(render(['keys.existingSecret=k']).map((o) => o.kind).sort()).to.deep.equal(['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service']);
    expect(render(EVERYTHING).map((o) => o.kind).sort()).to.deep.equal(['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Service', 'ServiceMonitor']);
    expect(render(['keys.existingSecret=k', 'podDisruptionBudget.enabled=false']).map((o) => o.kind)).to.not.include('PodDisruptionBudget');
  });

  it('every rendered object validates against the Kubernetes API schemas (kubernetes-models)', () => {
    for (const objects of [render(['keys.existingSecret=k']), render(EVERYTHING)]) {
      for (const o of objects) {
        if (o.kind === 'ServiceMonitor') continue; // a prometheus-operator CRD: checked by hand below
        const model = MODELS[`${o.apiVersion}/${o.kind}`];
        expect(model, `${o.apiVersion}/${o.kind}`).to.not.equal(undefined);
        model!.validate(o);
      }
    }
    // The validators do catch a wrong type: the check is not vacuous.
    const deployment = one(render(['keys.existingSecret=k']), 'Deployment');
    deployment.spec.template.spec.containers[0].ports[0].containerPort = 'tunnel';
    expect(() => MODELS['apps/v1/Deployment']!.validate(deployment)).to.throw(/containerPort must be integer/);
  });

  it('no rendered object has a field the Kubernetes API does not define (the compiler over the API types)', function () {
    this.timeout(120_000);
    const objects = render(EVERYTHING).filter((o) => o.kind !== 'ServiceMonitor');
    const misspelt = structuredClone(one(objects, 'Deployment'));
    misspelt.spec.template.spec.containers[0].readinesProbe = misspelt.spec.template.spec.containers[0].readinessProbe;
    const errors = typeCheck([...objects, misspelt]);
    // Only the planted misspelling is reported, and it is reported.
    expect(errors, errors.join('\n')).to.have.length(1);
    expect(errors[0]).to.include(`m${objects.length}`).and.include('readinesProbe');
  });

  it('the Deployment does what the chart promises: probes, drain grace, checksum, keys, security', () => {
    const objects = render(EVERYTHING);
    const deployment = one(objects, 'Deployment');
    const pod = deployment.spec.template.spec;
    const container = pod.containers.find((c: { name: string }) => c.name === 'quantum-vpn');
    const ports = Object.fromEntries(container.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]));
    expect(ports).to.deep.equal({ tunnel: 8443, metrics: 9090 });
    expect(container.startupProbe.httpGet).to.deep.equal({ path: '/healthz', port: 'metrics' });
    expect(container.livenessProbe.httpGet).to.deep.equal({ path: '/healthz', port: 'metrics' });
    expect(container.readinessProbe.httpGet).to.deep.equal({ path: '/readyz', port: 'metrics' });
    expect(container.lifecycle.preStop.exec.command).to.deep.equal(['sleep', '5']);
    expect(pod.terminationGracePeriodSeconds).to.equal(30 + 15 + 5);
    expect(pod.automountServiceAccountToken).to.equal(false);
    expect(pod.securityContext).to.deep.include({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    for (const c of [...pod.initContainers, ...pod.containers]) {
      expect(c.securityContext, c.name).to.deep.equal({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    }
    // Keys: the named Secret, copied 0600 into memory; the Secret volume itself is 0440 (octal).
    const volumes = Object.fromEntries(pod.volumes.map((v: { name: string }) => [v.name, v]));
    expect(volumes.secret.secret).to.deep.equal({ secretName: 'qt-keys', defaultMode: 0o440 });
    expect(volumes.keys.emptyDir.medium).to.equal('Memory');
    expect(volumes.config.configMap.name).to.equal(one(objects, 'ConfigMap').metadata.name);
    expect(pod.initContainers[0].command.join(' ')).to.include('install -m 0600');
    // FIPS on: the entrypoint is told, and so is the config file.
    expect(container.env).to.deep.include({ name: 'QUANTUM_TUNNEL_FIPS', value: '1' });
    expect(parseYaml(one(objects, 'ConfigMap').data!['config.yaml']!).fips).to.equal(true);
    // Under an HPA the Deployment leaves replicas to it.
    expect(deployment.spec).to.not.have.property('replicas');
    expect(one(render(['keys.existingSecret=k']), 'Deployment').spec.replicas).to.equal(2);
  });

  it('a config change changes the pod template (pods roll), and nothing else does', () => {
    const checksum = (sets: string[]) => one(render(['keys.existingSecret=k', ...sets]), 'Deployment').spec.template.metadata.annotations['checksum/config'];
    const base = checksum([]);
    expect(base).to.match(/^[0-9a-f]{64}$/);
    expect(checksum(['config.log-level=debug'])).to.not.equal(base);
    expect(checksum(['authorizedPeers=SHA256:abc'])).to.not.equal(base);
    expect(checksum(['replicaCount=3'])).to.equal(base);
  });

  it('Service, PDB, HPA and ServiceMonitor select the chart\'s pods and name its ports', () => {
    const objects = render(EVERYTHING);
    const podLabels = one(objects, 'Deployment').spec.template.metadata.labels;
    expect(podLabels).to.include({ tier: 'edge' });
    const selects = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => podLabels[k] === v);
    const service = one(objects, 'Service');
    expect(selects(service.spec.selector)).to.equal(true);
    expect(service.spec).to.deep.include({ type: 'LoadBalancer', externalTrafficPolicy: 'Local' });
    expect(service.spec.ports.map((p: { targetPort: string }) => p.targetPort).sort()).to.deep.equal(['metrics', 'tunnel']);
    expect(selects(one(objects, 'PodDisruptionBudget').spec.selector.matchLabels)).to.equal(true);
    const hpa = one(objects, 'HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).to.deep.equal({ apiVersion: 'apps/v1', kind: 'Deployment', name: one(objects, 'Deployment').metadata.name });
    const monitor = one(objects, 'ServiceMonitor');
    expect(monitor.apiVersion).to.equal('monitoring.coreos.com/v1');
    expect(monitor.metadata.labels).to.include({ release: 'prom' });
    expect(selects(monitor.spec.selector.matchLabels)).to.equal(true);
    expect(monitor.spec.endpoints).to.deep.equal([{ port: 'metrics', path: '/metrics', interval: '30s' }]);
  });

  it('the rendered config file passes quantum-vpn check-config (keys mapped to a temporary directory)', async function () {
    this.timeout(120_000);
    const dir = mkdtempSync(join(tmpdir(), 'qt-helm-'));
    try {
      const cli = (args: string[]) => promisify(execFile)(process.execPath, [...CLI_ARGS, ...args], { cwd: ROOT, encoding: 'utf8' });
      await cli(['keygen', join(dir, 'server.key')]);
      copyFileSync(join(dir, 'server.key.pub'), join(dir, 'authorized_peers'));
      const configMap = one(render(['keys.existingSecret=k']), 'ConfigMap');
      const text = configMap.data!['config.yaml']!
        .replaceAll('/etc/quantum-tunnel/keys/', `${dir}/`)
        .replaceAll('/etc/quantum-tunnel/authorized_peers', join(dir, 'authorized_peers'));
      expect(text).to.not.include('/etc/quantum-tunnel'); // every path the pod mounts was mapped
      const file = join(dir, 'config.yaml');
      writeFileSync(file, text, { mode: 0o600 });
      chmodSync(file, 0o600);
      const r = await cli(['check-config', file]).catch((e: { code: number; stdout: string; stderr: string }) => e);
      expect('code' in r ? r.code : 0, `${r.stdout}${r.stderr}`).to.equal(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Type-checks the objects as object literals of their kubernetes-models API types (`const m0:
 * IDeployment = {...}`), in a file placed in the project so the package resolves; returns the
 * compiler's messages, each prefixed with the object's variable.
 */
function typeCheck(objects: Manifest[]): string[] {
  const file = join(ROOT, 'test', 'deploy', '__helm-manifests.ts');
  const imports = [...new Set(objects.map((o) => `${o.apiVersion}/${o.kind}`))].map((key) => `import type { ${MODELS[key]!.type} } from '${MODELS[key]!.from}';`);
  const body = objects.map((o, i) => `export const m${i}: ${MODELS[`${o.apiVersion}/${o.kind}`]!.type} = ${JSON.stringify(o)};`);
  const source = [...imports, ...body].join('\n');
  const options: ts.CompilerOptions = { strict: true, noEmit: true, skipLibCheck: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, types: [] };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) => (name === file ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file || d.start === undefined) return message;
    const line = d.file.getLineAndCharacterOfPosition(d.start).line;
    const variable = /export const (m\d+)/.exec(source.split('\n')[line] ?? '')?.[1] ?? `line ${line}`;
    return `${variable}: ${message}`;
  });
}
