//! Rollout validation: the InvalidSpec messages, with upstream's field paths and wording
//! (`pkg/apis/rollouts/validation`). Pure; the first error becomes the InvalidSpec condition.
//!
//! # What is ported
//!
//! [`validate_rollout`] follows upstream's `ValidateRollout` rule for rule and in the same
//! order: `ValidateRolloutSpec`, `ValidateRolloutStrategy`, `ValidateRolloutStrategyBlueGreen`,
//! `ValidateRolloutStrategyCanary` (with `requireCanaryStableServices`,
//! `invalidMaxSurgeMaxUnavailable`, `hasMultipleStepsType`, `hasALBInvalidValues`,
//! `hasMultipleMatchValues`, `ValidateStepRouteFoundInManagedRoute`) and
//! `ValidateRolloutStrategyAntiAffinity`.
//!
//! Field paths are upstream's, quirks included: the strategy functions receive `spec.strategy`
//! as their base path, so canary and blue-green fields print as `spec.strategy.steps[0]...`,
//! `spec.strategy.activeService`, and a missing strategy as `spec.strategy.strategy`.
//!
//! Values print as Kubernetes' `field.Error` prints them: Go `%q` for strings, plain numbers
//! and booleans, `null` for nil pointers, the gogo-protobuf `String()` of API structs
//! (`&StringMatch{Exact:a,Prefix:,Regex:,}`), `%#v` for maps and slices.
//!
//! # Pod template
//!
//! Upstream hands the template to Kubernetes' `ValidatePodTemplateSpecForReplicaSet`. A subset
//! of it is ported here: the selector must select the template's labels, label and annotation
//! keys/values, containers present with a valid unique name and an image, resource quantities
//! parseable (an unparseable quantity makes upstream fail to decode the Rollout at all) and
//! non-negative, restart policy, `activeDeadlineSeconds`, no ephemeral containers. The rest of
//! Kubernetes' pod validation (volumes, probes, ports, security contexts, requests <= limits,
//! ...) is left to the API server, which checks it when the ReplicaSet is created.
//!
//! # Differences from upstream
//!
//! - An int-or-string `maxSurge`/`maxUnavailable` that does not parse (e.g. `"abc"`, `"-1"`)
//!   is an Invalid value here, with Kubernetes' Deployment wording. Upstream silently reads it
//!   as 0 and fails later, while reconciling.
//! - The "canary strategy requires at least one step" rule of the newest upstream revision
//!   seen is not ported: a canary without steps is a documented rolling update, and upstream's
//!   own manifests rely on it (`examples/rollout-rolling-update.yaml`,
//!   `test/e2e/functional/canary-scaledowndelay.yaml`).
//! - Like upstream, nothing here checks experiment template names, non-empty analysis
//!   templates or that referenced objects exist: upstream does that when reconciling
//!   (`validation_references.go`) or leaves it to the CRD schema (e.g. `activeService`
//!   required, which the duplicate-services rule also catches when both are empty).
//! - Where Go would print a pointer address inside a `%#v` value (analysis arguments), the
//!   pointee is printed instead.

mod apimachinery;
mod error;
mod gofmt;
pub mod messages;
mod rollout;
#[cfg(test)]
mod tests;

pub use error::{ErrorKind, FieldError};
pub use gofmt::go_quote;
pub use rollout::{validate_rollout, validate_rollout_spec};
