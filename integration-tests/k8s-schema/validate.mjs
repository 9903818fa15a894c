// Validates Kubernetes YAML (for instance `kubectl kustomize k8s/`) against the published
// OpenAPI schemas of each kind, offline: Kubernetes itself, Gateway API, Istio and the
// Prometheus operator, from the kubernetes-models packages (see package.json).
// Usage: kubectl kustomize k8s/ | node validate.mjs    (exit 1 and one line per problem)
import fs from 'node:fs';
import * as yaml from 'js-yaml';

// apiVersion group -> the package that carries its schemas.
const PACKAGES = [
  [/\.k8s\.io$|^apps$|^autoscaling$|^policy$|^batch$|^$/, 'kubernetes-models'],
  [/^gateway\.networking\.k8s\.io$/, '@kubernetes-models/gateway-api'],
  [/\.istio\.io$/, '@kubernetes-models/istio'],
  [/^monitoring\.coreos\.com$/, '@kubernetes-models/prometheus-operator'],
];

async function modelFor(apiVersion, kind) {
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  // gateway.networking.k8s.io ends in .k8s.io too: the more specific packages go first.
  const ordered = [PACKAGES[1], PACKAGES[2], PACKAGES[3], PACKAGES[0]];
  const entry = ordered.find(([re]) => re.test(group));
  if (!entry) return null;
  const path = [entry[1], group, version].filter((p) => p !== '').join('/');
  try {
    return (await import(path))[kind] || null;
  } catch (e) {
    return null;
  }
}

const text = fs.readFileSync(process.argv[2] || 0, 'utf8');
const problems = [];
let count = 0;
for (const doc of yaml.loadAll(text)) {
  if (doc == null) continue;
  count++;
  const id = `${doc.kind}/${doc.metadata && doc.metadata.name}`;
  if (!doc.apiVersion || !doc.kind) {
    problems.push(`${id}: no apiVersion or kind`);
    continue;
  }
  const Model = await modelFor(doc.apiVersion, doc.kind);
  if (!Model) {
    problems.push(`${id}: no schema known for ${doc.apiVersion} ${doc.kind}`);
    continue;
  }
  try {
    new Model(doc).validate();
  } catch (e) {
    const detail = e.errors ? e.errors.map((x) => `${x.instancePath} ${x.message}`).join('; ') : e.message;
    problems.push(`${id} (${doc.apiVersion}): ${detail}`);
  }
}
for (const p of problems) console.log(`INVALID ${p}`);
console.log(`${count} objects, ${problems.length} invalid`);
process.exit(problems.length === 0 && count > 0 ? 0 : 1);
