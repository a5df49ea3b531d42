// Offline schema validation of rendered Kubernetes objects (npm kubernetes-models: types, required
// fields, enums). Usage: node validate.mjs FILE... ; prints "kind/name" per object, exit 1 on error.
import fs from 'fs';
import { createRequire } from 'module';
const require = createRequire(process.env.POSTGATE_NODE_MODULES + '/');
const yaml = require('js-yaml');
const skip = new Set(['monitoring.coreos.com']);  // CRDs: not in kubernetes-models' core set.
let failed = false;
for (const file of process.argv.slice(2)) {
  for (const d of yaml.loadAll(fs.readFileSync(file, 'utf8')).filter(Boolean)) {
    const [group, version] = d.apiVersion.includes('/') ? d.apiVersion.split('/') : ['', d.apiVersion];
    if (skip.has(group)) { console.log(`skipped ${d.kind}/${d.metadata.name} (CRD)`); continue; }
    const path = process.env.POSTGATE_NODE_MODULES + '/kubernetes-models/' + (group ? `${group}/${version}` : version) + '/index.js';
    try {
      const Cls = (await import(path))[d.kind];
      if (!Cls) throw new Error(`unknown kind ${d.apiVersion} ${d.kind}`);
      new Cls(d).validate();
      console.log(`valid ${d.kind}/${d.metadata.name}`);
    } catch (e) {
      failed = true;
      console.log(`INVALID ${d.kind}/${d.metadata.name} in ${file}: ${e.message}`);
    }
  }
}
process.exit(failed ? 1 : 0);
