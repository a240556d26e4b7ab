//! The chaos suite's Rollouts: four scenarios, taken in turn.

/// A Rollout's scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// Canary routed by an Istio VirtualService: two weights, two timed pauses.
    IstioCanary,
    /// Canary without a router (maxSurge 1, maxUnavailable 0) with a Prometheus step analysis
    /// that passes.
    AnalysisCanary,
    /// Blue-green with a Prometheus pre-promotion analysis that passes, auto-promoted.
    BlueGreen,
    /// Canary routed by Istio whose step analysis fails: it aborts (Degraded), the weights
    /// return to stable, then the canary scales down.
    IstioAbort,
}

impl Scenario {
    /// The scenario of the `i`-th Rollout.
    pub fn nth(i: usize) -> Scenario {
        match i % 4 {
            0 => Scenario::IstioCanary,
            1 => Scenario::AnalysisCanary,
            2 => Scenario::BlueGreen,
            _ => Scenario::IstioAbort,
        }
    }

    /// The Rollout's name prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            Scenario::IstioCanary => "istio",
            Scenario::AnalysisCanary => "prom",
            Scenario::BlueGreen => "bg",
            Scenario::IstioAbort => "abort",
        }
    }

    /// The phase an update ends in.
    pub fn expected_phase(self) -> &'static str {
        match self {
            Scenario::IstioAbort => "Degraded",
            _ => "Healthy",
        }
    }

    /// The Rollout's manifests (Services, VirtualService, Rollout) at image tag `tag`.
    pub fn manifests(self, name: &str, tag: &str) -> String {
        let services = |a: &str, b: &str| {
            format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}-{a}}}\n\
                 spec: {{ports: [{{name: http, port: 80, targetPort: 8080, protocol: TCP}}], selector: {{app: {name}}}}}\n---\n\
                 apiVersion: v1\nkind: Service\nmetadata: {{name: {name}-{b}}}\n\
                 spec: {{ports: [{{name: http, port: 80, targetPort: 8080, protocol: TCP}}], selector: {{app: {name}}}}}\n---\n"
            )
        };
        let vs = format!(
            "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\nmetadata: {{name: {name}}}\n\
             spec:\n  hosts: [{name}]\n  http:\n  - name: primary\n    route:\n\
             \x20   - destination: {{host: {name}-stable}}\n      weight: 100\n\
             \x20   - destination: {{host: {name}-canary}}\n      weight: 0\n---\n"
        );
        let istio = |steps: &str| {
            format!(
                "    canary:\n      stableService: {name}-stable\n      canaryService: {name}-canary\n\
                 \x20     scaleDownDelaySeconds: 2\n      abortScaleDownDelaySeconds: 2\n\
                 \x20     trafficRouting:\n        istio:\n          virtualService: {{name: {name}, routes: [primary]}}\n\
                 \x20     steps:\n{steps}"
            )
        };
        let (pre, replicas, strategy) = match self {
            Scenario::IstioCanary => (
                format!("{}{vs}", services("stable", "canary")),
                3,
                istio(
                    "      - setWeight: 34\n      - pause: {duration: 3s}\n      - setWeight: 67\n      - pause: {duration: 3s}\n",
                ),
            ),
            Scenario::IstioAbort => (
                format!("{}{vs}", services("stable", "canary")),
                3,
                istio(
                    "      - setWeight: 34\n      - pause: {duration: 2s}\n      - analysis: {templates: [{templateName: chaos-fail}]}\n      - setWeight: 67\n",
                ),
            ),
            Scenario::AnalysisCanary => (
                String::new(),
                3,
                "    canary:\n      maxSurge: 1\n      maxUnavailable: 0\n      steps:\n\
                 \x20     - setWeight: 34\n      - analysis: {templates: [{templateName: chaos-pass}]}\n\
                 \x20     - setWeight: 67\n      - pause: {duration: 2s}\n"
                    .to_string(),
            ),
            Scenario::BlueGreen => (
                services("active", "preview"),
                2,
                format!(
                    "    blueGreen:\n      activeService: {name}-active\n      previewService: {name}-preview\n\
                     \x20     autoPromotionEnabled: true\n      scaleDownDelaySeconds: 3\n\
                     \x20     prePromotionAnalysis: {{templates: [{{templateName: chaos-pass}}]}}\n"
                ),
            ),
        };
        format!(
            "{pre}apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {{name: {name}}}\nspec:\n\
             \x20 replicas: {replicas}\n  revisionHistoryLimit: 2\n  progressDeadlineSeconds: 600\n\
             \x20 selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n\
             \x20   spec:\n      containers: [{{name: app, image: \"app:{tag}\", ports: [{{containerPort: 8080, protocol: TCP}}]}}]\n\
             \x20 strategy:\n{strategy}"
        )
    }
}

/// The two AnalysisTemplates: `chaos-pass` (an error ratio of 1 %) and `chaos-fail` (50 %),
/// both measured by the real Prometheus at `prometheus`. The pass template tolerates
/// Prometheus being down for its whole 20 s outage (30 consecutive errors at 2 s).
pub fn templates(prometheus: &str) -> String {
    let t = |name: &str, value: &str, count: u32| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {{name: {name}}}\nspec:\n\
             \x20 metrics:\n  - name: error-ratio\n    interval: 2s\n    count: {count}\n\
             \x20   consecutiveErrorLimit: 30\n    failureLimit: 0\n\
             \x20   successCondition: result[0] < 0.05\n    failureCondition: result[0] >= 0.3\n\
             \x20   provider:\n      prometheus:\n        address: {prometheus}\n\
             \x20       query: 'vector({value})'\n---\n"
        )
    };
    format!(
        "{}{}",
        t("chaos-pass", "0.01", 3),
        t("chaos-fail", "0.5", 1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_is_valid_yaml_with_one_rollout() {
        for i in 0..4 {
            let s = Scenario::nth(i);
            let docs: Vec<serde_json::Value> =
                crate::testkit::yaml_documents(&s.manifests("x", "v1")).unwrap();
            let rollouts: Vec<_> = docs.iter().filter(|d| d["kind"] == "Rollout").collect();
            assert_eq!(rollouts.len(), 1, "{s:?}");
            let ro: rollouts_core::api::Rollout =
                serde_json::from_value(rollouts[0].clone()).unwrap();
            let strategy = ro.spec.strategy.unwrap();
            assert_eq!(strategy.blue_green.is_some(), s == Scenario::BlueGreen);
        }
        let docs = crate::testkit::yaml_documents(&templates("http://127.0.0.1:1")).unwrap();
        assert_eq!(docs.len(), 2);
    }
}
