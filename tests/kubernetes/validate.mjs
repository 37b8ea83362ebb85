// Reads a JSON list of Kubernetes objects on stdin; validates each PodMonitor and PrometheusRule
// against prometheus-operator's schemas (@kubernetes-models/prometheus-operator, generated from
// its Go types), and each AnalysisTemplate against Argo Rollouts' (@kubernetes-models/argo-rollouts,
// from its CRDs). Other kinds are passed over. Prints one line per object; exits 1 when any is
// invalid.
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { AnalysisTemplate } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/AnalysisTemplate";

const models = { PodMonitor, PrometheusRule, AnalysisTemplate };
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
let failed = false;
for (const object of JSON.parse(Buffer.concat(chunks).toString("utf8"))) {
  const Model = models[object.kind];
  if (Model === undefined) continue;
  const name = `${object.kind}/${object.metadata?.name}`;
  try {
    new Model(object).validate();
    console.log(`${name}: valid`);
  } catch (error) {
    failed = true;
    console.log(`${name}: ${error.message}`);
  }
}
process.exit(failed ? 1 : 0);
