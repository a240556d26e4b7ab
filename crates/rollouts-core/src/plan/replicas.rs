//! Canary replica arithmetic, after Argo Rollouts (`utils/replicaset/canary.go` and the
//! fencepost helpers of `utils/replicaset/replicaset.go`, as of upstream 9f8d111, v1.10):
//! weights out of `maxTrafficWeight`, `minPodsPerReplicaSet` capped at the Rollout's
//! replicas, the step-by-step abort of `dynamicStableScale` and `replicaProgressThreshold`.
//! The tests port upstream's tables case by case.
//!
//! Everything here is a pure function of plain numbers: the caller resolves the Rollout
//! object (current step, pod hashes, ReplicaSet identities) into the small input types
//! below and gets back the replica counts the canary and stable ReplicaSets should be
//! scaled to.
//!
//! # Input sanitising
//!
//! No function in this module panics, whatever its input. Values Kubernetes validation
//! would reject are brought into range first, and every count returned is within
//! `0..=i32::MAX`:
//!
//! * negative replica counts (Rollout spec, ReplicaSet spec or available) count as `0`;
//! * negative [`IntOrPercent`] values count as `0`; percentages above 100% are kept, since
//!   a max surge of, say, `200%` is legal (max unavailable is capped at the Rollout's
//!   replicas anyway);
//! * a basic canary's weight is clamped to `0..=100`; a traffic-routed canary's weight only
//!   to `>= 0`, because `setCanaryScale.weight` may exceed the maximum to over-provision
//!   canaries;
//! * traffic-routed weights are out of `trafficRouting.maxTrafficWeight` (100 unless set; a
//!   basic canary's are always out of 100), and observed traffic weights are clamped to
//!   `0..=maxTrafficWeight`;
//! * arithmetic is done in 64 (or 128) bits, so there is no overflow, and results are
//!   saturated into `0..=i32::MAX`.
//!
//! # Differences from upstream
//!
//! For valid inputs the results match upstream's, with one exception, made on purpose:
//! see [`desired_canary_and_stable_replicas`] (upstream puts no pods on the canary when,
//! with no surge, the weight is exactly half a pod short of all replicas, e.g. 95% of 10).
//! Beyond that:
//!
//! * Upstream reads every int-or-string *string* as a percentage (its default `maxSurge`
//!   is the string `"25"`), and an unparsable one silently resolves to zero. Here the
//!   caller parses with [`IntOrPercent::from_str`], which takes `"25%"` as a percentage,
//!   `"25"` as a count, and reports anything else as an error.
//! * With dynamic stable scaling and a `setCanaryScale.weight` above 100, upstream's
//!   stable weight goes negative, giving a negative count or one raised to
//!   `minPodsPerReplicaSet`; here the stable's weight stops at 0, so its count is 0.
//! * Upstream multiplies in `int32` and may wrap; here nothing overflows.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::error::Error;
use std::fmt;
use std::num::ParseIntError;
use std::str::FromStr;

/// Replica count a Rollout has when `spec.replicas` is unset.
pub const DEFAULT_REPLICAS: i32 = 1;

/// An int-or-string field as [`IntOrPercent`] (`None` when unset or unparsable; validation
/// reports the latter).
pub fn int_or_percent(v: Option<&IntOrString>) -> Option<IntOrPercent> {
    match v? {
        IntOrString::Int(i) => Some(IntOrPercent::Int(*i)),
        IntOrString::String(s) => s.parse().ok(),
    }
}

/// A Kubernetes int-or-string quantity such as `maxSurge: 3` or `maxSurge: "25%"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntOrPercent {
    /// An absolute number of pods.
    Int(i32),
    /// A percentage of the Rollout's desired replicas.
    Percent(i32),
}

impl IntOrPercent {
    /// `maxSurge` used when the canary strategy leaves it unset (25%).
    pub const DEFAULT_MAX_SURGE: IntOrPercent = IntOrPercent::Percent(25);
    /// `maxUnavailable` used when the canary strategy leaves it unset (25%).
    pub const DEFAULT_MAX_UNAVAILABLE: IntOrPercent = IntOrPercent::Percent(25);

    /// Resolves the value against `total` pods.
    ///
    /// An [`Int`](IntOrPercent::Int) is returned as is; a
    /// [`Percent`](IntOrPercent::Percent) is `total * percent / 100`, rounded up when
    /// `round_up` is true and down otherwise. Negative values and totals count as zero.
    #[must_use]
    pub fn scaled_value(self, total: i32, round_up: bool) -> i32 {
        saturate(self.scaled(non_negative(total), round_up))
    }

    fn scaled(self, total: i64, round_up: bool) -> i64 {
        match self {
            IntOrPercent::Int(value) => non_negative(value),
            IntOrPercent::Percent(percent) => {
                let hundredths = non_negative(percent) * total;
                if round_up {
                    ceil_div_100(hundredths)
                } else {
                    hundredths / 100
                }
            }
        }
    }
}

impl From<i32> for IntOrPercent {
    fn from(value: i32) -> Self {
        IntOrPercent::Int(value)
    }
}

impl fmt::Display for IntOrPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrPercent::Int(value) => write!(f, "{value}"),
            IntOrPercent::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

/// Why a string is not an [`IntOrPercent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseIntOrPercentError {
    /// The text is not a whole number, optionally followed by a single `%`.
    Invalid {
        /// The text that was parsed.
        input: String,
        /// Why its number part did not parse.
        source: ParseIntError,
    },
    /// The number is negative, which Kubernetes never accepts for these fields.
    Negative {
        /// The text that was parsed.
        input: String,
    },
}

impl fmt::Display for ParseIntOrPercentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseIntOrPercentError::Invalid { input, source } => write!(
                f,
                "invalid int-or-percent {input:?} (expected a whole number like \"3\" \
                 or a percentage like \"25%\"): {source}"
            ),
            ParseIntOrPercentError::Negative { input } => {
                write!(f, "invalid int-or-percent {input:?}: must not be negative")
            }
        }
    }
}

impl Error for ParseIntOrPercentError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ParseIntOrPercentError::Invalid { source, .. } => Some(source),
            ParseIntOrPercentError::Negative { .. } => None,
        }
    }
}

impl FromStr for IntOrPercent {
    type Err = ParseIntOrPercentError;

    /// Parses `"25%"` as [`Percent(25)`](IntOrPercent::Percent) and `"3"` as
    /// [`Int(3)`](IntOrPercent::Int).
    ///
    /// Unlike the deprecated Kubernetes helper Argo Rollouts calls, which reads every
    /// string as a percentage and drops `%` signs wherever they are, a bare number is an
    /// absolute count here and only one trailing `%` is accepted.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (digits, is_percent) = match input.strip_suffix('%') {
            Some(digits) => (digits, true),
            None => (input, false),
        };
        let value: i32 = digits
            .parse()
            .map_err(|source| ParseIntOrPercentError::Invalid {
                input: input.to_owned(),
                source,
            })?;
        if value < 0 {
            return Err(ParseIntOrPercentError::Negative {
                input: input.to_owned(),
            });
        }
        Ok(if is_percent {
            IntOrPercent::Percent(value)
        } else {
            IntOrPercent::Int(value)
        })
    }
}

/// Resolves `maxSurge` and `maxUnavailable` together for `desired` replicas and returns
/// `(surge, unavailable)`.
///
/// Surge percentages round up and unavailable percentages round down. If both come out
/// as zero, unavailable becomes 1 so that a rollout can always make progress (a surge
/// might be blocked by quota). Neither value is capped here; see [`max_unavailable`].
#[must_use]
pub fn resolve_fenceposts(
    max_surge: IntOrPercent,
    max_unavailable: IntOrPercent,
    desired: i32,
) -> (i32, i32) {
    let (surge, unavailable) = fenceposts(max_surge, max_unavailable, non_negative(desired));
    (saturate(surge), saturate(unavailable))
}

/// The number of pods a canary Rollout of `spec_replicas` may run above its desired
/// count. An unset `max_surge` means [`IntOrPercent::DEFAULT_MAX_SURGE`].
#[must_use]
pub fn max_surge(spec_replicas: i32, max_surge: Option<IntOrPercent>) -> i32 {
    saturate(surge_budget(non_negative(spec_replicas), max_surge))
}

/// The number of pods a canary Rollout of `spec_replicas` may have unavailable, capped at
/// `spec_replicas` (and so zero for a Rollout scaled to zero). Unset values mean
/// [`IntOrPercent::DEFAULT_MAX_SURGE`] and [`IntOrPercent::DEFAULT_MAX_UNAVAILABLE`]; the
/// surge matters because both resolving to zero turns unavailable into 1.
#[must_use]
pub fn max_unavailable(
    spec_replicas: i32,
    max_surge: Option<IntOrPercent>,
    max_unavailable: Option<IntOrPercent>,
) -> i32 {
    saturate(unavailable_budget(
        non_negative(spec_replicas),
        max_surge,
        max_unavailable,
    ))
}

/// Canary and stable replica counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReplicaCounts {
    /// Replicas of the canary (new) ReplicaSet.
    pub canary: i32,
    /// Replicas of the stable ReplicaSet.
    pub stable: i32,
}

/// Splits `spec_replicas` between canary and stable so that the canary's share of pods
/// is as close as possible to `weight` percent.
///
/// The candidates are the weight rounded up and rounded down over `spec_replicas` pods,
/// and, when `max_surge > 0`, the same over `spec_replicas + 1` pods; so the two counts
/// sum to `spec_replicas`, or to one more only if surging is allowed. The candidate whose
/// actual percentage is nearest wins; on equal distance the earlier one (in the order
/// ceil, floor, surged ceil, surged floor) wins, and when rounding up and down are equally
/// far, only the larger canary is considered. For a weight strictly between 0 and 100
/// neither side is left at zero pods, unless there is a single replica and no surge.
///
/// One deliberate difference from upstream: when the weight over `spec_replicas` ends in
/// exactly one half just below the whole (2 replicas at 75%, 10 at 95%, 50 at 99%) and
/// there is no surge, upstream finds no candidate and returns no canary pods at all; here
/// the weight is rounded down instead (1 of 2, 9 of 10, 49 of 50).
///
/// `weight` is clamped to `0..=100`.
#[must_use]
pub fn desired_canary_and_stable_replicas(
    spec_replicas: i32,
    weight: i32,
    max_surge: i32,
) -> ReplicaCounts {
    let (canary, stable) = approximate_split(
        non_negative(spec_replicas),
        i64::from(weight.clamp(0, 100)),
        non_negative(max_surge),
    );
    counts(canary, stable)
}

/// Replica counts of one ReplicaSet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RsState {
    /// Desired replicas (`spec.replicas`).
    pub replicas: i32,
    /// Pods that are available (`status.availableReplicas`).
    pub available: i32,
}

impl RsState {
    /// A ReplicaSet wanting `replicas` pods of which `available` are available.
    #[must_use]
    pub const fn new(replicas: i32, available: i32) -> Self {
        RsState {
            replicas,
            available,
        }
    }
}

/// The stable ReplicaSet as a basic canary sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StableRs {
    /// There is no stable ReplicaSet (for example, the first rollout).
    Missing,
    /// The stable ReplicaSet is the canary ReplicaSet itself (the pod template is the
    /// stable one). Give the canary's state as the canary.
    SameAsCanary,
    /// A stable ReplicaSet distinct from the canary.
    Distinct(RsState),
}

/// Inputs of [`basic_canary_replica_counts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BasicCanaryInput<'a> {
    /// The Rollout's `spec.replicas` (use [`DEFAULT_REPLICAS`] when unset).
    pub spec_replicas: i32,
    /// The desired canary weight in percent: the current `setWeight`, 100 when promoting
    /// fully or when there is no distinct stable, 0 when aborted (see [`canary_scale`]).
    pub weight: i32,
    /// The strategy's `maxSurge`; `None` means [`IntOrPercent::DEFAULT_MAX_SURGE`].
    pub max_surge: Option<IntOrPercent>,
    /// The strategy's `maxUnavailable`; `None` means
    /// [`IntOrPercent::DEFAULT_MAX_UNAVAILABLE`].
    pub max_unavailable: Option<IntOrPercent>,
    /// The canary (new) ReplicaSet, if it exists yet.
    pub canary: Option<RsState>,
    /// The stable ReplicaSet.
    pub stable: StableRs,
    /// Every other ReplicaSet of the Rollout (older revisions).
    pub others: &'a [RsState],
}

/// The replica counts to scale a basic (not traffic-routed) canary's ReplicaSets to in
/// this reconciliation, moving toward the weight while keeping within the surge and
/// availability budgets.
///
/// The target split comes from [`desired_canary_and_stable_replicas`], or is everything
/// on the canary when there is no distinct stable ReplicaSet. Then:
///
/// 1. Scale up: the room left under `spec_replicas + maxSurge` (counting every
///    ReplicaSet's desired replicas) goes first to the stable, then to the canary, each
///    up to its target.
/// 2. If any older ReplicaSet still has replicas, stop: those are scaled down first.
/// 3. Scale down: the side being drained (the stable while the canary grows or holds,
///    the canary while it shrinks on an abort or a lower weight) is shrunk toward its
///    target by the pods in excess of `spec_replicas - maxUnavailable`, counting all of
///    the drained side's desired pods but only the other side's available ones, so that
///    failing pods on the drained side cannot block it. The other side is then trimmed to
///    keep the total within the surge budget, keeping back pods where availability would
///    otherwise fall too low.
///
/// When `stable` is [`StableRs::SameAsCanary`] the returned stable count has no meaning.
#[must_use]
pub fn basic_canary_replica_counts(input: &BasicCanaryInput<'_>) -> ReplicaCounts {
    let spec = non_negative(input.spec_replicas);
    let surge = surge_budget(spec, input.max_surge);
    let (mut desired_canary, mut desired_stable) =
        approximate_split(spec, i64::from(input.weight.clamp(0, 100)), surge);

    let canary = input.canary.map(Rs::from);
    let (stable, scale_stable) = match input.stable {
        StableRs::Missing => (None, false),
        StableRs::SameAsCanary => (canary, false),
        StableRs::Distinct(state) => (Some(Rs::from(state)), true),
    };

    let mut canary_count = canary.map_or(0, |rs| rs.replicas);
    let mut stable_count = 0;
    match stable {
        Some(rs) if scale_stable => stable_count = rs.replicas,
        _ => {
            desired_canary = spec;
            desired_stable = 0;
        }
    }

    let max_allowed = spec + surge;
    let others_replicas = input.others.iter().fold(0i64, |sum, rs| {
        sum.saturating_add(non_negative(rs.replicas))
    });
    let stable_replicas = if scale_stable {
        stable.map_or(0, |rs| rs.replicas)
    } else {
        0
    };
    let total = others_replicas
        .saturating_add(canary_count)
        .saturating_add(stable_replicas);
    let mut scale_up = max_allowed - total;

    if let Some(rs) =
        stable.filter(|rs| scale_stable && rs.replicas < desired_stable && scale_up > 0)
    {
        if rs.replicas + scale_up < desired_stable {
            stable_count = rs.replicas + scale_up;
            scale_up = 0;
        } else {
            stable_count = desired_stable;
            scale_up -= desired_stable - rs.replicas;
        }
    }
    if let Some(rs) = canary.filter(|rs| rs.replicas < desired_canary && scale_up > 0) {
        canary_count = (rs.replicas + scale_up).min(desired_canary);
    }

    if others_replicas > 0 {
        return counts(canary_count, stable_count);
    }

    let min_available = spec - unavailable_budget(spec, input.max_surge, input.max_unavailable);
    let canary_growing = canary.is_none_or(|rs| desired_canary >= rs.replicas);
    let scalable =
        scale_down_basis(canary, !canary_growing) + scale_down_basis(stable, canary_growing);
    if scalable <= min_available {
        return counts(canary_count, stable_count);
    }
    let scale_down = scalable - min_available;

    if !canary_growing {
        canary_count = scale_down_toward(canary, desired_canary, scale_down, canary_count);
        (canary_count, stable_count) = keep_within_limits(
            canary,
            stable,
            canary_count,
            stable_count,
            max_allowed,
            min_available,
        );
    } else if scale_stable {
        stable_count = scale_down_toward(stable, desired_stable, scale_down, stable_count);
        (stable_count, canary_count) = keep_within_limits(
            stable,
            canary,
            stable_count,
            canary_count,
            max_allowed,
            min_available,
        );
    }
    counts(canary_count, stable_count)
}

/// The number of a ReplicaSet's pods that can be counted on as available when deciding
/// how far to scale down (`0` for a missing ReplicaSet).
///
/// Normally that is its available pods. With `ignore_availability` it is its desired
/// replicas, so that a ReplicaSet whose pods are failing can still be scaled down. Either
/// way it is never more than the desired replicas: pods above that are about to go away.
#[must_use]
pub fn replicas_for_scale_down(rs: Option<RsState>, ignore_availability: bool) -> i32 {
    saturate(scale_down_basis(rs.map(Rs::from), ignore_availability))
}

/// The pods needed to carry `weight` out of `max_weight` (`maxTrafficWeight`, 100 unless set)
/// of `replicas`, rounded up (upstream's `trafficWeightToReplicas`).
///
/// `weight` may exceed `max_weight`; a negative weight counts as 0, and a `max_weight` below
/// 1 (which validation refuses) as 1.
#[must_use]
pub fn traffic_weight_to_replicas(replicas: i32, weight: i32, max_weight: i32) -> i32 {
    saturate(weight_to_replicas(
        non_negative(replicas),
        non_negative(weight),
        i64::from(max_weight.max(1)),
    ))
}

/// Raises a non-zero `count` to `min_pods_per_replica_set` when that is set
/// (`minPodsPerReplicaSet`, which only applies with traffic routing), the minimum itself
/// capped at the Rollout's `spec_replicas` (upstream's fix for issue 4566: a minimum above
/// the Rollout's size would keep the new ReplicaSet larger than the Rollout, so it could
/// never become stable). Zero stays zero.
#[must_use]
pub fn apply_min_pods_per_replica_set(
    count: i32,
    min_pods_per_replica_set: Option<i32>,
    spec_replicas: i32,
) -> i32 {
    saturate(with_min_pods(
        non_negative(count),
        min_pods_per_replica_set,
        non_negative(spec_replicas),
    ))
}

/// What [`dynamic_abort_weight`] needs: an aborted, traffic-routed Rollout with
/// `dynamicStableScale` and both a canary and a stable ReplicaSet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DynamicAbortInput<'a> {
    /// The Rollout's `spec.replicas`.
    pub spec_replicas: i32,
    /// `trafficRouting.maxTrafficWeight` (100 unless set).
    pub max_weight: i32,
    /// The stable ReplicaSet's available pods.
    pub stable_available: i32,
    /// The canary ReplicaSet's available pods.
    pub canary_available: i32,
    /// Whether `abortScaleDownDelaySeconds` is set explicitly to a positive delay: the canary
    /// then stays at full size until its deadline, so its size must not hold the weight up.
    pub explicit_abort_delay: bool,
    /// The weights of the Rollout's `setWeight` steps, in step order.
    pub step_weights: &'a [i32],
}

/// The canary weight an aborted Rollout with `dynamicStableScale` steps back to (upstream's
/// `GetDesiredCanaryWeight`, v1.9): instead of dropping to 0 at once, which would scale the
/// stable to full size while the canary is still up (16 pods for a 10-replica Rollout aborted
/// at 60%), the weight walks the `setWeight` steps backwards. The canary's current share is
/// what the stable cannot serve yet (`spec_replicas - stable_available`), or its available
/// pods if more (unless an explicit abort delay keeps it up regardless); the result is the
/// largest step weight whose pods are fewer than that, or 0.
#[must_use]
pub fn dynamic_abort_weight(input: &DynamicAbortInput<'_>) -> i32 {
    let spec = non_negative(input.spec_replicas);
    let max_weight = i64::from(input.max_weight.max(1));
    let expected = spec - i64::from(input.stable_available);
    let canary = if input.explicit_abort_delay {
        expected
    } else {
        expected.max(i64::from(input.canary_available))
    };
    input
        .step_weights
        .iter()
        .rev()
        .copied()
        .find(|&w| weight_to_replicas(spec, non_negative(w), max_weight) < canary)
        .unwrap_or(0)
}

/// What [`abort_traffic_weight`] needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortTrafficInput {
    /// The Rollout's `spec.replicas` (above 0).
    pub spec_replicas: i32,
    /// `trafficRouting.maxTrafficWeight` (100 unless set).
    pub max_weight: i32,
    /// The stable ReplicaSet's available pods.
    pub stable_available: i32,
    /// The canary weight the Rollout wants ([`dynamic_abort_weight`] on an abort).
    pub desired_canary_weight: i32,
    /// The canary weight recorded in `status.canary.weights`, if any.
    pub current_canary_weight: Option<i32>,
}

/// The canary's traffic weight during an abort (or a rollback to the stable) with dynamic
/// stable scaling (upstream's `calculateDesiredWeightOnAbortOrStableRollback`): traffic moves
/// to the stable only as fast as the stable's available pods can take it, and never goes back
/// up because the stable's availability flaps.
#[must_use]
pub fn abort_traffic_weight(input: &AbortTrafficInput) -> i32 {
    let spec = non_negative(input.spec_replicas).max(1);
    let max_weight = i64::from(input.max_weight.max(1));
    let stable_share = (max_weight * non_negative(input.stable_available)) / spec;
    let expected = (max_weight - stable_share).max(0);
    let desired = i64::from(input.desired_canary_weight);
    let weight = match input.current_canary_weight.map(i64::from) {
        None => expected.max(desired),
        Some(current) if desired <= 0 => expected.min(current),
        // The stable is still scaling up: keep the canary's weight.
        Some(current) if stable_share < max_weight - desired => current,
        Some(current) => desired.min(current),
    };
    saturate(weight)
}

/// `replicaProgressThreshold` (upstream v1.9): how many of a step's canary pods must be
/// available before the step counts as done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgressThreshold {
    /// `type: Percent`: this percentage of the pods the step wants.
    Percent(i32),
    /// `type: Pods` (upstream reads any type but `Percent` so): at least this many available
    /// pods, whatever the step wants (as upstream's: a step wanting fewer pods than this never
    /// completes).
    Pods(i32),
}

/// Upstream's `ReplicaProgressThresholdMet`: without a threshold (or with a negative value) a
/// ReplicaSet must want exactly `desired` pods and have them all available. A `Percent`
/// threshold is met once `available / desired` reaches it (always, when no pods are desired);
/// a `Pods` threshold once that many pods are available. A missing ReplicaSet meets nothing.
#[must_use]
pub fn replica_progress_threshold_met(
    threshold: Option<ProgressThreshold>,
    rs: Option<RsState>,
    desired: i32,
) -> bool {
    let Some(rs) = rs else { return false };
    match threshold {
        Some(ProgressThreshold::Percent(value)) if value >= 0 => {
            // available / desired * 100 >= value, exactly (upstream compares floats with an
            // epsilon to the same effect).
            desired == 0 || i64::from(rs.available) * 100 >= i64::from(value) * i64::from(desired)
        }
        Some(ProgressThreshold::Pods(value)) if value >= 0 => rs.available >= value,
        _ => rs.replicas == desired && rs.available == desired,
    }
}

/// How many canary pods the current step asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CanaryScale {
    /// A percentage of the Rollout's replicas (`setWeight` or `setCanaryScale.weight`).
    Weight(i32),
    /// An explicit count (`setCanaryScale.replicas`).
    Replicas(i32),
}

/// A canary step's `setCanaryScale`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SetCanaryScale {
    /// `replicas`: an explicit canary count; takes precedence over `weight`.
    pub replicas: Option<i32>,
    /// `weight`: canary count as a percentage of the Rollout's replicas.
    pub weight: Option<i32>,
    /// `matchTrafficWeight`: go back to scaling with the traffic weight.
    pub match_traffic_weight: bool,
}

/// What [`canary_scale`] needs to know of a Rollout, resolved by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CanaryScaleInput {
    /// `status.promoteFull`.
    pub promote_full: bool,
    /// True when `status.stableRS` is empty or equals `status.currentPodHash`: there is
    /// nothing to canary against.
    pub stable_is_current: bool,
    /// `status.abort`.
    pub aborted: bool,
    /// Whether the canary strategy has `trafficRouting`.
    pub traffic_routed: bool,
    /// The canary strategy's `abortScaleDownDelaySeconds`.
    pub abort_scale_down_delay_seconds: Option<i32>,
    /// The `setCanaryScale` of the latest step at or before the current one that has
    /// one; `None` if there is none or all steps are done.
    pub set_canary_scale: Option<SetCanaryScale>,
    /// The weight of the latest `setWeight` step at or before the current one:
    /// `max_weight` when all steps are done or there are none, 0 when no earlier step sets a
    /// weight.
    pub step_weight: i32,
    /// The weight when aborted: 0, or with `dynamicStableScale` the step the abort has walked
    /// back to ([`dynamic_abort_weight`]).
    pub abort_weight: i32,
    /// `trafficRouting.maxTrafficWeight` (100 unless set): the full weight.
    pub max_weight: i32,
}

impl Default for CanaryScaleInput {
    fn default() -> Self {
        CanaryScaleInput {
            promote_full: false,
            stable_is_current: false,
            aborted: false,
            traffic_routed: false,
            abort_scale_down_delay_seconds: None,
            set_canary_scale: None,
            step_weight: 0,
            abort_weight: 0,
            max_weight: 100,
        }
    }
}

/// The canary scale the Rollout is at (upstream's `GetCanaryReplicasOrWeight`): the full
/// weight when promoting fully or when there is no distinct stable; otherwise the step's
/// `setCanaryScale` if it applies (traffic routing only, not overridden by
/// `matchTrafficWeight`, and when aborted only with `abortScaleDownDelaySeconds: 0`);
/// otherwise the step weight, or the abort weight when aborted.
#[must_use]
pub fn canary_scale(input: &CanaryScaleInput) -> CanaryScale {
    if input.promote_full || input.stable_is_current {
        return CanaryScale::Weight(input.max_weight);
    }
    let set_canary_scale_applies =
        input.traffic_routed && (!input.aborted || input.abort_scale_down_delay_seconds == Some(0));
    if let Some(scale) = input
        .set_canary_scale
        .filter(|scale| set_canary_scale_applies && !scale.match_traffic_weight)
    {
        if let Some(replicas) = scale.replicas {
            return CanaryScale::Replicas(replicas);
        }
        if let Some(weight) = scale.weight {
            return CanaryScale::Weight(weight);
        }
    }
    CanaryScale::Weight(if input.aborted {
        input.abort_weight
    } else {
        input.step_weight
    })
}

/// Traffic weights (out of `maxTrafficWeight`) as currently set on the traffic router.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TrafficWeights {
    /// Weight routed to the canary.
    pub canary: i32,
    /// Weight routed to the stable.
    pub stable: i32,
}

/// Inputs of [`traffic_routed_canary_replica_counts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrafficRoutedCanaryInput {
    /// The Rollout's `spec.replicas` (use [`DEFAULT_REPLICAS`] when unset).
    pub spec_replicas: i32,
    /// The canary scale the Rollout is at (see [`canary_scale`]).
    pub scale: CanaryScale,
    /// `trafficRouting.maxTrafficWeight` (100 unless set): weights are out of it.
    pub max_weight: i32,
    /// The canary strategy's `dynamicStableScale`.
    pub dynamic_stable_scale: bool,
    /// `status.abort`.
    pub aborted: bool,
    /// The canary strategy's `minPodsPerReplicaSet`.
    pub min_pods_per_replica_set: Option<i32>,
    /// The weights currently set on the traffic router, if known.
    pub current_weights: Option<TrafficWeights>,
}

/// The replica counts for a canary whose traffic is split by a traffic router rather
/// than by pod counts (upstream's `CalculateReplicaCountsForTrafficRoutedCanary`).
///
/// The canary gets the explicit count, or its weight's share (out of `max_weight`) of
/// `spec_replicas` rounded up and raised to `minPodsPerReplicaSet`. Without
/// `dynamicStableScale` the stable stays at `spec_replicas`. With it, the stable gets the
/// larger of what the remaining weight and the stable's current traffic weight need, so it
/// only shrinks once traffic has left it; and when aborting, the canary likewise keeps what
/// its current traffic weight needs. Both counts are then raised to `minPodsPerReplicaSet`
/// unless zero. The minimum is capped at `spec_replicas`.
#[must_use]
pub fn traffic_routed_canary_replica_counts(input: &TrafficRoutedCanaryInput) -> ReplicaCounts {
    let spec = non_negative(input.spec_replicas);
    let max_weight = i64::from(input.max_weight.max(1));
    let min_pods = input.min_pods_per_replica_set;
    let (mut canary, desired_weight) = match input.scale {
        CanaryScale::Replicas(replicas) => (non_negative(replicas), 0),
        CanaryScale::Weight(weight) => {
            let weight = non_negative(weight);
            (
                with_min_pods(weight_to_replicas(spec, weight, max_weight), min_pods, spec),
                weight,
            )
        }
    };
    if !input.dynamic_stable_scale {
        return counts(canary, spec);
    }

    let mut stable = weight_to_replicas(spec, (max_weight - desired_weight).max(0), max_weight);
    if let Some(weights) = input.current_weights {
        let routed = |weight: i32| {
            weight_to_replicas(spec, i64::from(weight).clamp(0, max_weight), max_weight)
        };
        stable = stable.max(routed(weights.stable));
        if input.aborted {
            canary = canary.max(routed(weights.canary));
        }
    }
    counts(
        with_min_pods(canary, min_pods, spec),
        with_min_pods(stable, min_pods, spec),
    )
}

/// Inputs of [`at_desired_replica_counts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DesiredCountsCheck<'a> {
    /// The counts the step wants, from [`basic_canary_replica_counts`] or
    /// [`traffic_routed_canary_replica_counts`].
    pub desired: ReplicaCounts,
    /// The canary ReplicaSet, if it exists.
    pub canary: Option<RsState>,
    /// The stable ReplicaSet, if it exists.
    pub stable: Option<RsState>,
    /// The stable ReplicaSet's `status.replicas`: pods created, available or not.
    pub stable_created: i32,
    /// Whether the canary strategy has `trafficRouting`.
    pub traffic_routed: bool,
    /// The canary strategy's `dynamicStableScale`.
    pub dynamic_stable_scale: bool,
    /// The canary strategy's `replicaProgressThreshold`.
    pub progress_threshold: Option<ProgressThreshold>,
    /// Every other ReplicaSet of the Rollout (older revisions).
    pub others: &'a [RsState],
}

/// Whether the ReplicaSets have reached the step's desired counts (upstream's
/// `AtDesiredReplicaCountsForCanary`): the canary meets its `replicaProgressThreshold`
/// (without one: wants and has exactly its count available, see
/// [`replica_progress_threshold_met`]); the stable wants and has created exactly its count
/// (its availability is not required, and it is not checked at all with traffic routing and
/// dynamic stable scaling); and, for a basic canary, which splits traffic by pods, no older
/// ReplicaSet has available pods.
#[must_use]
pub fn at_desired_replica_counts(check: &DesiredCountsCheck<'_>) -> bool {
    let desired = check.desired;
    if !replica_progress_threshold_met(check.progress_threshold, check.canary, desired.canary) {
        return false;
    }
    if !(check.traffic_routed && check.dynamic_stable_scale) {
        let stable_done = check.stable.is_some_and(|rs| {
            rs.replicas == desired.stable && check.stable_created == desired.stable
        });
        if !stable_done {
            return false;
        }
    }
    if !check.traffic_routed {
        let others_available = check
            .others
            .iter()
            .fold(0i64, |sum, rs| sum + i64::from(rs.available));
        if others_available != 0 {
            return false;
        }
    }
    true
}

/// A ReplicaSet's counts, sanitised and widened.
#[derive(Clone, Copy, Debug)]
struct Rs {
    replicas: i64,
    available: i64,
}

impl From<RsState> for Rs {
    fn from(state: RsState) -> Self {
        Rs {
            replicas: non_negative(state.replicas),
            available: non_negative(state.available),
        }
    }
}

fn non_negative(value: i32) -> i64 {
    i64::from(value.max(0))
}

fn saturate(value: i64) -> i32 {
    i32::try_from(value.clamp(0, i64::from(i32::MAX))).unwrap_or(i32::MAX)
}

fn counts(canary: i64, stable: i64) -> ReplicaCounts {
    ReplicaCounts {
        canary: saturate(canary),
        stable: saturate(stable),
    }
}

/// `ceil(value / 100)` for `value >= 0`.
fn ceil_div_100(value: i64) -> i64 {
    value / 100 + i64::from(value % 100 != 0)
}

fn fenceposts(max_surge: IntOrPercent, max_unavailable: IntOrPercent, desired: i64) -> (i64, i64) {
    let surge = max_surge.scaled(desired, true);
    let unavailable = max_unavailable.scaled(desired, false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

fn surge_budget(spec: i64, max_surge: Option<IntOrPercent>) -> i64 {
    max_surge
        .unwrap_or(IntOrPercent::DEFAULT_MAX_SURGE)
        .scaled(spec, true)
}

fn unavailable_budget(
    spec: i64,
    max_surge: Option<IntOrPercent>,
    max_unavailable: Option<IntOrPercent>,
) -> i64 {
    if spec == 0 {
        return 0;
    }
    let (_, unavailable) = fenceposts(
        max_surge.unwrap_or(IntOrPercent::DEFAULT_MAX_SURGE),
        max_unavailable.unwrap_or(IntOrPercent::DEFAULT_MAX_UNAVAILABLE),
        spec,
    );
    unavailable.min(spec)
}

/// See [`desired_canary_and_stable_replicas`]; `weight` is in `0..=100`, the others are
/// non-negative. Returns `(canary, stable)`.
fn approximate_split(spec: i64, weight: i64, max_surge: i64) -> (i64, i64) {
    if spec == 0 {
        return (0, 0);
    }
    let weighted = spec * weight;
    let ceil = ceil_div_100(weighted);
    let floor = weighted / 100;
    // Rounding up and down are equally far from the weight over `total` pods.
    let tied = |total: i64| (total * weight) % 100 == 50;
    let zero_allowed = weight == 0 || weight == 100 || (spec == 1 && max_surge == 0);

    // (canary, total) candidates, in order of preference on equal distance.
    let mut options: Vec<(i64, i64)> = Vec::with_capacity(4);
    if ceil < spec || zero_allowed {
        options.push((ceil, spec));
    }
    if !tied(spec) && (floor != 0 || zero_allowed) {
        options.push((floor, spec));
    }
    if max_surge > 0 {
        options.push((ceil, spec + 1));
        if !tied(spec + 1) && (floor != 0 || zero_allowed) {
            options.push((floor, spec + 1));
        }
    }

    // Distance from the weight is |100 * canary - weight * total| / total; compare two
    // such fractions exactly by cross-multiplying.
    let distance = |(canary, total): (i64, i64)| {
        (
            i128::from((100 * canary - weight * total).abs()),
            i128::from(total),
        )
    };
    let closer = |a: (i64, i64), b: (i64, i64)| {
        let ((a_num, a_den), (b_num, b_den)) = (distance(a), distance(b));
        a_num * b_den < b_num * a_den
    };
    // Only reached when the weight sits exactly halfway below 100% of the replicas
    // (e.g. 2 replicas at 75%, 10 at 95%) with no surge: rounding up would leave the
    // stable empty, and rounding down was dropped as the smaller side of a tie. Upstream
    // returns `(0, spec)` here, putting no pods on the canary; round down instead.
    let Some(mut best) = options.first().copied() else {
        return (floor, spec - floor);
    };
    for &option in &options[1..] {
        if closer(option, best) {
            best = option;
        }
    }
    (best.0, best.1 - best.0)
}

fn scale_down_basis(rs: Option<Rs>, ignore_availability: bool) -> i64 {
    match rs {
        None => 0,
        Some(rs) if ignore_availability || rs.replicas < rs.available => rs.replicas,
        Some(rs) => rs.available,
    }
}

/// Scales `rs` down by up to `scale_down` replicas but not below `desired`; `current` is
/// kept when `rs` is missing or not above `desired`.
fn scale_down_toward(rs: Option<Rs>, desired: i64, scale_down: i64, current: i64) -> i64 {
    match rs {
        Some(rs) if rs.replicas > desired => desired.max(rs.replicas - scale_down),
        _ => current,
    }
}

/// After `drain` (the side whose availability was not counted on) has been scaled down,
/// trims `adjust` so the two fit under `max_allowed`, but gives `adjust` back as many of
/// its available pods as are needed to keep `min_available`; whatever then still exceeds
/// `max_allowed` comes off `drain`. Returns `(drain_count, adjust_count)`.
fn keep_within_limits(
    drain: Option<Rs>,
    adjust: Option<Rs>,
    mut drain_count: i64,
    mut adjust_count: i64,
    max_allowed: i64,
    min_available: i64,
) -> (i64, i64) {
    let excess =
        |drain_count: i64, adjust_count: i64| (drain_count + adjust_count - max_allowed).max(0);
    let mut available = drain.map_or(0, |rs| rs.available.min(drain_count));
    if let Some(rs) = adjust {
        adjust_count -= excess(drain_count, adjust_count);
        available += rs.available.min(adjust_count);
        let lost_available = (rs.available - adjust_count).max(0);
        let still_needed = (min_available - available).max(0);
        adjust_count += lost_available.min(still_needed);
        drain_count -= excess(drain_count, adjust_count);
    }
    (drain_count, adjust_count)
}

/// `ceil(replicas * weight / max_weight)` for non-negative inputs and `max_weight >= 1`.
fn weight_to_replicas(replicas: i64, weight: i64, max_weight: i64) -> i64 {
    let weighted = i128::from(replicas) * i128::from(weight);
    let max_weight = i128::from(max_weight);
    let ceil = weighted / max_weight + i128::from(weighted % max_weight != 0);
    i64::try_from(ceil).unwrap_or(i64::MAX)
}

/// Upstream's `CheckMinPodsPerReplicaSet`: a non-zero count raised to the minimum, the minimum
/// capped at the Rollout's replicas.
fn with_min_pods(count: i64, min_pods: Option<i32>, spec: i64) -> i64 {
    match min_pods {
        Some(min) if count != 0 => count.max(i64::from(min).min(spec)),
        _ => count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(value: i32) -> IntOrPercent {
        IntOrPercent::Int(value)
    }

    /// Parses a percentage the way the upstream tests write them (`intstr.FromString`).
    fn string(text: &str) -> IntOrPercent {
        text.parse().expect("test percentage parses")
    }

    const fn rs(replicas: i32, available: i32) -> RsState {
        RsState::new(replicas, available)
    }

    /// Expected counts in upstream's order: stable first, then canary.
    const fn stable_canary(stable: i32, canary: i32) -> ReplicaCounts {
        ReplicaCounts { canary, stable }
    }

    /// One row of upstream's `TestCalculateReplicaCountsForCanary`.
    #[derive(Clone, Copy)]
    struct CanaryCase {
        name: &'static str,
        rollout_spec_replicas: i32,
        set_weight: i32,
        max_surge: IntOrPercent,
        max_unavailable: IntOrPercent,
        promote_full: bool,
        stable: RsState,
        canary: RsState,
        expected: ReplicaCounts,
        older_rs: Option<RsState>,
        set_canary_scale: Option<SetCanaryScale>,
        traffic_routing: bool,
        abort_scale_down_delay_seconds: Option<i32>,
        status_abort: bool,
        min_pods_per_replica_set: Option<i32>,
    }

    /// Go's zero values, as the upstream table leaves unset fields.
    const CASE: CanaryCase = CanaryCase {
        name: "",
        rollout_spec_replicas: 0,
        set_weight: 0,
        max_surge: IntOrPercent::Int(0),
        max_unavailable: IntOrPercent::Int(0),
        promote_full: false,
        stable: RsState::new(0, 0),
        canary: RsState::new(0, 0),
        expected: stable_canary(0, 0),
        older_rs: None,
        set_canary_scale: None,
        traffic_routing: false,
        abort_scale_down_delay_seconds: None,
        status_abort: false,
        min_pods_per_replica_set: None,
    };

    fn scs(
        replicas: Option<i32>,
        weight: Option<i32>,
        match_traffic_weight: bool,
    ) -> Option<SetCanaryScale> {
        Some(SetCanaryScale {
            replicas,
            weight,
            match_traffic_weight,
        })
    }

    /// Mirrors the upstream harness: a rollout with one step (`setWeight` plus the
    /// optional `setCanaryScale`) at index 0, current pod hash "canary", stable "stable",
    /// and distinct canary and stable ReplicaSets.
    fn run_canary_case(case: &CanaryCase) -> ReplicaCounts {
        let scale = canary_scale(&CanaryScaleInput {
            promote_full: case.promote_full,
            stable_is_current: false,
            aborted: case.status_abort,
            traffic_routed: case.traffic_routing,
            abort_scale_down_delay_seconds: case.abort_scale_down_delay_seconds,
            set_canary_scale: case.set_canary_scale,
            step_weight: case.set_weight,
            ..CanaryScaleInput::default()
        });
        if case.traffic_routing {
            traffic_routed_canary_replica_counts(&TrafficRoutedCanaryInput {
                spec_replicas: case.rollout_spec_replicas,
                scale,
                max_weight: 100,
                dynamic_stable_scale: false,
                aborted: case.status_abort,
                min_pods_per_replica_set: case.min_pods_per_replica_set,
                current_weights: None,
            })
        } else {
            let CanaryScale::Weight(weight) = scale else {
                panic!(
                    "{}: setCanaryScale.replicas needs traffic routing",
                    case.name
                );
            };
            let others: Vec<RsState> = case.older_rs.into_iter().collect();
            basic_canary_replica_counts(&BasicCanaryInput {
                spec_replicas: case.rollout_spec_replicas,
                weight,
                max_surge: Some(case.max_surge),
                max_unavailable: Some(case.max_unavailable),
                canary: Some(case.canary),
                stable: StableRs::Distinct(case.stable),
                others: &others,
            })
        }
    }

    fn canary_cases() -> Vec<CanaryCase> {
        vec![
            CanaryCase {
                name: "Do not add extra RSs in scaleDownCount when .Spec.Replica < AvailableReplicas",
                rollout_spec_replicas: 10,
                set_weight: 100,
                max_surge: int(3),
                max_unavailable: int(0),
                stable: rs(7, 8),
                canary: rs(6, 3),
                expected: stable_canary(7, 6),
                ..CASE
            },
            CanaryCase {
                name: "Use max surge int to scale up canary",
                rollout_spec_replicas: 10,
                set_weight: 20,
                max_surge: int(2),
                max_unavailable: int(0),
                stable: rs(10, 10),
                canary: rs(0, 0),
                expected: stable_canary(10, 2),
                ..CASE
            },
            CanaryCase {
                name: "Use max surge percentage to scale up canary",
                rollout_spec_replicas: 10,
                set_weight: 20,
                max_surge: string("20%"),
                max_unavailable: int(0),
                stable: rs(10, 10),
                canary: rs(0, 0),
                expected: stable_canary(10, 2),
                ..CASE
            },
            CanaryCase {
                name: "Scale down extra stable replicas",
                rollout_spec_replicas: 10,
                set_weight: 20,
                max_surge: string("20%"),
                max_unavailable: int(0),
                stable: rs(10, 10),
                canary: rs(2, 2),
                expected: stable_canary(8, 2),
                ..CASE
            },
            CanaryCase {
                name: "Do not go past max surge",
                rollout_spec_replicas: 10,
                set_weight: 30,
                max_surge: int(2),
                max_unavailable: int(0),
                stable: rs(10, 10),
                canary: rs(0, 0),
                expected: stable_canary(10, 2),
                ..CASE
            },
            CanaryCase {
                name: "Use max unavailable int to scale down stableRS",
                rollout_spec_replicas: 10,
                set_weight: 20,
                max_surge: int(0),
                max_unavailable: int(2),
                stable: rs(10, 10),
                canary: rs(0, 0),
                expected: stable_canary(8, 0),
                ..CASE
            },
            CanaryCase {
                name: "Use max surge percentage to scale down stableRS",
                rollout_spec_replicas: 10,
                set_weight: 20,
                max_surge: int(0),
                max_unavailable: string("20%"),
                stable: rs(10, 10),
                canary: rs(0, 0),
                expected: stable_canary(8, 0),
                ..CASE
            },
            CanaryCase {
                name: "Do not go past max unavailable",
                rollout_spec_replicas: 10,
                set_weight: 30,
                max_surge: int(0),
                max_unavailable: int(2),
                stable: rs(10, 10),
                canary: rs(0, 0),
                expected: stable_canary(8, 0),
                ..CASE
            },
            CanaryCase {
                name: "Use Max Surge and Max Unavailable",
                rollout_spec_replicas: 10,
                set_weight: 50,
                max_surge: int(2),
                max_unavailable: int(1),
                stable: rs(10, 10),
                canary: rs(0, 0),
                expected: stable_canary(9, 2),
                ..CASE
            },
            CanaryCase {
                name: "Scale canaryRS to zero on setWeight of 0%",
                rollout_spec_replicas: 10,
                set_weight: 0,
                max_surge: int(1),
                max_unavailable: int(1),
                stable: rs(10, 10),
                canary: rs(1, 1),
                expected: stable_canary(10, 0),
                ..CASE
            },
            CanaryCase {
                name: "Scale stable to zero on setWeight of 100%",
                rollout_spec_replicas: 10,
                set_weight: 100,
                max_surge: int(1),
                max_unavailable: int(1),
                stable: rs(1, 1),
                canary: rs(10, 10),
                expected: stable_canary(0, 10),
                ..CASE
            },
            CanaryCase {
                name: "Do not scale canaryRS down to zero on non-zero weight",
                rollout_spec_replicas: 1,
                set_weight: 20,
                max_surge: int(1),
                max_unavailable: int(0),
                stable: rs(1, 1),
                canary: rs(0, 0),
                expected: stable_canary(1, 1),
                ..CASE
            },
            CanaryCase {
                name: "Do not scale canaryRS down to zero on non-100 weight",
                rollout_spec_replicas: 1,
                set_weight: 90,
                max_surge: int(1),
                max_unavailable: int(0),
                stable: rs(1, 1),
                canary: rs(0, 0),
                expected: stable_canary(1, 1),
                ..CASE
            },
            CanaryCase {
                name: "Scale canaryRS to zero on <50 weight without surge",
                rollout_spec_replicas: 1,
                set_weight: 49,
                max_surge: int(0),
                max_unavailable: int(1),
                stable: rs(1, 1),
                canary: rs(0, 0),
                expected: stable_canary(1, 0),
                ..CASE
            },
            CanaryCase {
                name: "Scale stableRS down to zero on >=50 weight without surge",
                rollout_spec_replicas: 1,
                set_weight: 51,
                max_surge: int(0),
                max_unavailable: int(1),
                stable: rs(1, 1),
                canary: rs(0, 0),
                expected: stable_canary(0, 0),
                ..CASE
            },
            CanaryCase {
                name: "Scale canaryRS to one on >=50 weight without surge and stable replicas",
                rollout_spec_replicas: 1,
                set_weight: 51,
                max_surge: int(0),
                max_unavailable: int(1),
                stable: rs(0, 0),
                canary: rs(0, 0),
                expected: stable_canary(0, 1),
                ..CASE
            },
            CanaryCase {
                name: "Scale up Stable before canaryRS",
                rollout_spec_replicas: 10,
                set_weight: 30,
                max_surge: int(1),
                max_unavailable: int(0),
                stable: rs(1, 1),
                canary: rs(0, 0),
                older_rs: Some(rs(3, 3)),
                expected: stable_canary(7, 1),
                ..CASE
            },
            CanaryCase {
                name: "Scale down canaryRS and stable",
                rollout_spec_replicas: 10,
                set_weight: 30,
                max_surge: int(0),
                max_unavailable: int(3),
                stable: rs(8, 5),
                canary: rs(4, 4),
                expected: stable_canary(7, 3),
                ..CASE
            },
            CanaryCase {
                name: "Scale down stable and canary available",
                rollout_spec_replicas: 10,
                set_weight: 100,
                max_surge: int(1),
                max_unavailable: int(0),
                stable: rs(10, 2),
                canary: rs(10, 8),
                expected: stable_canary(2, 9),
                ..CASE
            },
            CanaryCase {
                name: "Do not scale down canaryRS or stable when older RS count >= scaleDownCount",
                rollout_spec_replicas: 10,
                set_weight: 30,
                max_surge: int(0),
                max_unavailable: int(1),
                stable: rs(8, 6),
                canary: rs(4, 2),
                older_rs: Some(rs(3, 3)),
                expected: stable_canary(8, 4),
                ..CASE
            },
            CanaryCase {
                name: "Do not round past maxSurge with uneven setWeight divisor",
                rollout_spec_replicas: 10,
                set_weight: 5,
                max_surge: int(0),
                max_unavailable: int(1),
                stable: rs(10, 10),
                canary: rs(0, 0),
                expected: stable_canary(9, 0),
                ..CASE
            },
            CanaryCase {
                name: "Do not round past maxSurge with uneven setWeight divisor (part 2)",
                rollout_spec_replicas: 10,
                set_weight: 5,
                max_surge: int(0),
                max_unavailable: int(1),
                stable: rs(9, 9),
                canary: rs(0, 0),
                expected: stable_canary(9, 1),
                ..CASE
            },
            CanaryCase {
                name: "Use maxUnavailable of 1 when percentage of maxUnavailable and maxSurge result in 0 replicas",
                rollout_spec_replicas: 10,
                set_weight: 10,
                max_surge: string("0%"),
                max_unavailable: string("0%"),
                stable: rs(10, 10),
                canary: rs(0, 0),
                expected: stable_canary(9, 0),
                ..CASE
            },
            CanaryCase {
                name: "For canary replicas, use setCanaryScale.replicas when specified along with trafficRouting (and ignore setWeight)",
                rollout_spec_replicas: 1,
                set_weight: 100,
                stable: rs(1, 1),
                set_canary_scale: scs(Some(9), None, false),
                traffic_routing: true,
                expected: stable_canary(1, 9),
                ..CASE
            },
            CanaryCase {
                name: "Use setCanaryScale.weight for canary replicas when specified with trafficRouting (and ignore setWeight)",
                rollout_spec_replicas: 4,
                set_weight: 100,
                stable: rs(4, 4),
                set_canary_scale: scs(None, Some(200), false),
                traffic_routing: true,
                expected: stable_canary(4, 8),
                ..CASE
            },
            CanaryCase {
                name: "Ignore setCanaryScale replicas/weight when matchTrafficWeight is true",
                rollout_spec_replicas: 10,
                set_weight: 20,
                max_surge: string("20%"),
                max_unavailable: int(0),
                stable: rs(10, 10),
                canary: rs(0, 0),
                set_canary_scale: scs(Some(9), Some(100), true),
                traffic_routing: true,
                expected: stable_canary(10, 2),
                ..CASE
            },
            CanaryCase {
                name: "Ignore setCanaryScale when trafficRouting is missing and use setWeight for replicas",
                rollout_spec_replicas: 10,
                set_weight: 20,
                max_surge: string("20%"),
                max_unavailable: int(0),
                stable: rs(10, 10),
                canary: rs(0, 0),
                set_canary_scale: scs(Some(9), Some(100), false),
                traffic_routing: false,
                expected: stable_canary(10, 2),
                ..CASE
            },
            CanaryCase {
                name: "honor maxSurge during scale up when stableRS unavailable",
                rollout_spec_replicas: 4,
                set_weight: 100,
                max_surge: int(1),
                max_unavailable: int(0),
                stable: rs(4, 1),
                canary: rs(0, 0),
                expected: stable_canary(4, 1),
                ..CASE
            },
            CanaryCase {
                name: "scale down to maxunavailable without exceeding maxSurge",
                rollout_spec_replicas: 3,
                set_weight: 99,
                max_surge: int(0),
                max_unavailable: int(2),
                stable: rs(3, 3),
                canary: rs(0, 0),
                expected: stable_canary(1, 0),
                ..CASE
            },
            CanaryCase {
                name: "scale down to maxunavailable without exceeding maxSurge (part 2)",
                rollout_spec_replicas: 3,
                set_weight: 99,
                max_surge: int(0),
                max_unavailable: int(2),
                stable: rs(1, 1),
                canary: rs(0, 0),
                expected: stable_canary(1, 2),
                ..CASE
            },
            CanaryCase {
                name: "honor maxUnavailable during scale down stableRS unavailable",
                rollout_spec_replicas: 4,
                set_weight: 100,
                max_surge: int(1),
                max_unavailable: int(0),
                stable: rs(4, 1),
                canary: rs(1, 1),
                expected: stable_canary(3, 1),
                ..CASE
            },
            CanaryCase {
                name: "honor maxUnavailable when aborting or reducing weight part 1",
                rollout_spec_replicas: 4,
                set_weight: 0,
                max_surge: int(1),
                max_unavailable: int(0),
                stable: rs(0, 0),
                canary: rs(4, 4),
                expected: stable_canary(1, 4),
                ..CASE
            },
            CanaryCase {
                name: "honor maxUnavailable when aborting or reducing weight part 2",
                rollout_spec_replicas: 4,
                set_weight: 0,
                max_surge: int(1),
                max_unavailable: int(0),
                stable: rs(1, 0),
                canary: rs(4, 4),
                expected: stable_canary(1, 4),
                ..CASE
            },
            CanaryCase {
                name: "honor maxUnavailable when aborting or reducing weight part 3",
                rollout_spec_replicas: 4,
                set_weight: 0,
                max_surge: int(1),
                max_unavailable: int(0),
                stable: rs(1, 1),
                canary: rs(4, 4),
                expected: stable_canary(1, 3),
                ..CASE
            },
            CanaryCase {
                name: "promote full does not consider weight",
                promote_full: true,
                rollout_spec_replicas: 4,
                set_weight: 1,
                max_surge: int(4),
                max_unavailable: int(4),
                stable: rs(4, 4),
                canary: rs(0, 0),
                expected: stable_canary(0, 4),
                ..CASE
            },
            CanaryCase {
                name: "promote full still honors maxSurge/maxUnavailable",
                promote_full: true,
                rollout_spec_replicas: 4,
                set_weight: 1,
                max_surge: int(3),
                max_unavailable: int(0),
                stable: rs(4, 4),
                canary: rs(0, 0),
                expected: stable_canary(4, 3),
                ..CASE
            },
            CanaryCase {
                name: "aborted with abortScaleDownDelaySeconds:0 and setCanaryScale",
                rollout_spec_replicas: 1,
                stable: rs(1, 1),
                canary: rs(1, 1),
                set_canary_scale: scs(Some(1), None, false),
                traffic_routing: true,
                abort_scale_down_delay_seconds: Some(0),
                status_abort: true,
                expected: stable_canary(1, 1),
                ..CASE
            },
            CanaryCase {
                name: "aborted with abortScaleDownDelaySeconds>0 and setCanaryScale",
                rollout_spec_replicas: 1,
                stable: rs(1, 1),
                canary: rs(1, 1),
                set_canary_scale: scs(Some(1), None, false),
                traffic_routing: true,
                abort_scale_down_delay_seconds: Some(30),
                status_abort: true,
                expected: stable_canary(1, 0),
                ..CASE
            },
            CanaryCase {
                name: "Honor MinPodsPerReplicaSet when using trafficRouting and starting canary",
                rollout_spec_replicas: 10,
                set_weight: 5,
                stable: rs(10, 10),
                canary: rs(0, 0),
                traffic_routing: true,
                min_pods_per_replica_set: Some(2),
                expected: stable_canary(10, 2),
                ..CASE
            },
            CanaryCase {
                name: "Cap MinPodsPerReplicaSet when it exceeds rollout replicas with trafficRouting",
                rollout_spec_replicas: 1,
                set_weight: 100,
                promote_full: true,
                stable: rs(1, 1),
                canary: rs(0, 0),
                traffic_routing: true,
                min_pods_per_replica_set: Some(2),
                expected: stable_canary(1, 1),
                ..CASE
            },
        ]
    }

    #[test]
    fn calculate_replica_counts_for_canary() {
        let cases = canary_cases();
        assert_eq!(cases.len(), 40, "upstream's table at 9f8d111 has 40 cases");
        let mut failures = Vec::new();
        for case in &cases {
            let got = run_canary_case(case);
            let want = case.expected;
            if got != want {
                failures.push(format!("{}: got {got:?}, want {want:?}", case.name));
            }
        }
        assert!(
            failures.is_empty(),
            "failing cases:\n{}",
            failures.join("\n")
        );
    }

    #[test]
    fn approximate_weighted_new_stable_replica_counts() {
        // (replicas, weight, max surge, expected canary, expected stable)
        let cases: [(i32, i32, i32, i32, i32); 57] = [
            (0, 0, 0, 0, 0),
            (0, 50, 0, 0, 0),
            (0, 100, 0, 0, 0),
            (0, 0, 1, 0, 0),
            (0, 50, 1, 0, 0),
            (0, 100, 1, 0, 0),
            (1, 0, 0, 0, 1),
            (1, 1, 0, 0, 1),
            (1, 49, 0, 0, 1),
            (1, 50, 0, 1, 0),
            (1, 99, 0, 1, 0),
            (1, 100, 0, 1, 0),
            (1, 0, 1, 0, 1),
            (1, 1, 1, 1, 1),
            (1, 49, 1, 1, 1),
            (1, 50, 1, 1, 1),
            (1, 99, 1, 1, 1),
            (1, 100, 1, 1, 0),
            (2, 0, 0, 0, 2),
            (2, 1, 0, 1, 1),
            (2, 50, 0, 1, 1),
            (2, 99, 0, 1, 1),
            (2, 100, 0, 2, 0),
            (2, 0, 1, 0, 2),
            (2, 1, 1, 1, 2),
            (2, 50, 1, 1, 1),
            (2, 99, 1, 2, 1),
            (2, 100, 1, 2, 0),
            (3, 10, 0, 1, 2),
            (3, 25, 0, 1, 2),
            (3, 33, 0, 1, 2),
            (3, 34, 0, 1, 2),
            (3, 49, 0, 1, 2),
            (3, 50, 0, 2, 1),
            (3, 10, 1, 1, 3),
            (3, 25, 1, 1, 3),
            (3, 33, 1, 1, 2),
            (3, 34, 1, 1, 2),
            (3, 49, 1, 2, 2),
            (3, 50, 1, 2, 2),
            (10, 0, 1, 0, 10),
            (10, 1, 0, 1, 9),
            (10, 14, 0, 1, 9),
            (10, 15, 0, 2, 8),
            (10, 16, 0, 2, 8),
            (10, 99, 0, 9, 1),
            (10, 100, 1, 10, 0),
            (10, 0, 1, 0, 10),
            (10, 1, 1, 1, 10),
            (10, 18, 1, 2, 9),
            (10, 19, 1, 2, 9),
            (10, 20, 1, 2, 8),
            (10, 23, 1, 2, 8),
            (10, 24, 1, 3, 8),
            (10, 25, 1, 3, 8),
            (10, 99, 1, 10, 1),
            (10, 100, 1, 10, 0),
        ];
        let mut failures = Vec::new();
        for (replicas, weight, surge, canary, stable) in cases {
            let got = desired_canary_and_stable_replicas(replicas, weight, surge);
            let want = ReplicaCounts { canary, stable };
            if got != want {
                failures.push(format!(
                    "TestApproximateWeightedNewStableReplicaCounts_replicas:{replicas}_weight:{weight}_surge:{surge}: got {got:?}, want {want:?}"
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "failing cases:\n{}",
            failures.join("\n")
        );
    }

    #[test]
    fn calculate_replica_counts_for_new_deployment() {
        // Upstream passes one ReplicaSet as both the new and the stable one.
        let got = basic_canary_replica_counts(&BasicCanaryInput {
            spec_replicas: 10,
            weight: 10,
            max_surge: Some(int(0)),
            max_unavailable: Some(int(1)),
            canary: Some(rs(10, 0)),
            stable: StableRs::SameAsCanary,
            others: &[],
        });
        assert_eq!(
            got,
            ReplicaCounts {
                canary: 10,
                stable: 0
            }
        );
    }

    #[test]
    fn calculate_replica_counts_for_canary_traffic_routing() {
        let got = traffic_routed_canary_replica_counts(&TrafficRoutedCanaryInput {
            spec_replicas: 10,
            scale: CanaryScale::Weight(10),
            max_weight: 100,
            dynamic_stable_scale: false,
            aborted: false,
            min_pods_per_replica_set: None,
            current_weights: None,
        });
        assert_eq!(
            got,
            ReplicaCounts {
                canary: 1,
                stable: 10
            }
        );
    }

    /// Upstream's `GetCanaryReplicasOrWeight` + `CalculateReplicaCountsForTrafficRoutedCanary`
    /// for a Rollout at step 0 of `steps` (all `setWeight`), as its tests build them.
    struct RoutedCase<'a> {
        spec_replicas: i32,
        steps: &'a [i32],
        aborted: bool,
        dynamic_stable_scale: bool,
        abort_scale_down_delay_seconds: Option<i32>,
        canary: Option<RsState>,
        stable: Option<RsState>,
        weights: Option<TrafficWeights>,
    }

    fn routed(case: &RoutedCase<'_>) -> ReplicaCounts {
        let abort_weight = match (
            case.aborted && case.dynamic_stable_scale,
            case.canary,
            case.stable,
        ) {
            (true, Some(canary), Some(stable)) => dynamic_abort_weight(&DynamicAbortInput {
                spec_replicas: case.spec_replicas,
                max_weight: 100,
                stable_available: stable.available,
                canary_available: canary.available,
                explicit_abort_delay: case.abort_scale_down_delay_seconds.is_some_and(|d| d != 0),
                step_weights: case.steps,
            }),
            _ => 0,
        };
        let scale = canary_scale(&CanaryScaleInput {
            aborted: case.aborted,
            traffic_routed: true,
            abort_scale_down_delay_seconds: case.abort_scale_down_delay_seconds,
            step_weight: case.steps.first().copied().unwrap_or(100),
            abort_weight,
            ..CanaryScaleInput::default()
        });
        traffic_routed_canary_replica_counts(&TrafficRoutedCanaryInput {
            spec_replicas: case.spec_replicas,
            scale,
            max_weight: 100,
            dynamic_stable_scale: case.dynamic_stable_scale,
            aborted: case.aborted,
            min_pods_per_replica_set: None,
            current_weights: case.weights,
        })
    }

    #[test]
    fn calculate_replica_counts_for_canary_traffic_routing_dynamic_scale() {
        // Upstream's table (its `rolloutMaxReplicas` is the first step's setWeight; `steps` are
        // appended after it; the canary's available pods equal its replicas).
        #[allow(clippy::type_complexity)]
        let cases: [(
            &str,
            i32,
            i32,
            bool,
            &[i32],
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
        ); 8] = [
            // name, replicas, setWeight, abort, extra steps, canary weight, stable weight,
            // canary replicas, stable replicas, stable available, want canary, want stable
            (
                "Should scale stable replica up depending on next expected canary downscale step, if abort is true",
                10,
                20,
                true,
                &[60],
                60,
                40,
                6,
                4,
                4,
                6,
                8,
            ),
            (
                "Should scale stable replica up depending on available canary replicas, if actual number of canaries is less than expected and abort is true",
                10,
                20,
                true,
                &[60],
                60,
                40,
                1,
                4,
                4,
                6,
                8,
            ),
            (
                "Should scale stable replica up depending on available stable replicas, if abort is true",
                10,
                20,
                true,
                &[60],
                60,
                40,
                2,
                8,
                4,
                6,
                8,
            ),
            (
                "Should scale stable up as if canaries are scaled down to 0 if stable and canary replicas not passed, and abort is true",
                10,
                20,
                true,
                &[60],
                60,
                40,
                0,
                0,
                0,
                6,
                10,
            ),
            (
                "Should scale down stable",
                10,
                10,
                false,
                &[],
                10,
                90,
                0,
                0,
                0,
                1,
                9,
            ),
            (
                "Should take max of desired canary (20) > actual (10)",
                10,
                20,
                false,
                &[],
                10,
                90,
                0,
                0,
                0,
                2,
                9,
            ),
            (
                "Should leave canary scaled up if there is still traffic to it on abort",
                10,
                20,
                true,
                &[],
                20,
                80,
                0,
                0,
                0,
                2,
                10,
            ),
            (
                "Should reduce canary when there is less traffic to it on abort",
                10,
                20,
                true,
                &[],
                10,
                90,
                0,
                0,
                0,
                1,
                10,
            ),
        ];
        for (name, replicas, set_weight, aborted, extra, cw, sw, cr, sr, sa, want_c, want_s) in
            cases
        {
            let mut steps = vec![set_weight];
            steps.extend_from_slice(extra);
            let got = routed(&RoutedCase {
                spec_replicas: replicas,
                steps: &steps,
                aborted,
                dynamic_stable_scale: true,
                abort_scale_down_delay_seconds: None,
                canary: (cr > 0).then_some(rs(cr, cr)),
                stable: (sr > 0).then_some(rs(sr, sa)),
                weights: Some(TrafficWeights {
                    canary: cw,
                    stable: sw,
                }),
            });
            assert_eq!(
                got,
                ReplicaCounts {
                    canary: want_c,
                    stable: want_s
                },
                "{name}"
            );
        }
    }

    #[test]
    fn get_desired_canary_weight_on_abort_with_scale_down_delay() {
        // Upstream's TestGetDesiredCanaryWeightOnAbortWithScaleDownDelay (issue 4898): steps
        // 10 and 50, 10 replicas, a canary of 5 available pods.
        let weight = |delay: Option<i32>, stable_available: i32| {
            dynamic_abort_weight(&DynamicAbortInput {
                spec_replicas: 10,
                max_weight: 100,
                stable_available,
                canary_available: 5,
                explicit_abort_delay: delay.is_some_and(|d| d != 0),
                step_weights: &[10, 50],
            })
        };
        assert_eq!(
            weight(None, 9),
            10,
            "no explicit delay: weight is held up by canary size (progressive drain unchanged)"
        );
        assert_eq!(
            weight(Some(30), 5),
            10,
            "explicit delay: weight steps down gradually while stable is scaling up"
        );
        assert_eq!(
            weight(Some(30), 9),
            0,
            "explicit delay: weight reaches zero once stable nearly covers spec.Replicas (deadlock case)"
        );
        assert_eq!(
            weight(Some(0), 9),
            10,
            "explicit zero delay (leave canary up indefinitely): weight is held up by canary size"
        );
        // stable scales to spec.Replicas once weight reaches zero
        let got = routed(&RoutedCase {
            spec_replicas: 10,
            steps: &[10, 50],
            aborted: true,
            dynamic_stable_scale: true,
            abort_scale_down_delay_seconds: Some(30),
            canary: Some(rs(5, 5)),
            stable: Some(rs(9, 9)),
            weights: Some(TrafficWeights {
                canary: 10,
                stable: 90,
            }),
        });
        assert_eq!(got.stable, 10);
    }

    #[test]
    fn abort_traffic_weight_follows_the_stable() {
        // Upstream's trafficrouting_test.go cases for calculateDesiredWeightOnAbortOrStableRollback
        // (5 replicas): (desired from the walk-back, stable available, current canary weight, want).
        let cases = [
            // TestDynamicScalingDontIncreaseWeightWhenAborted: stable 4 of 5, weight 0 stays 0.
            ("dont increase weight when aborted", 0, 4, Some(0), 0),
            // TestDynamicScalingDecreaseWeightAccordingToStepWeightsAvailabilityWhenAborted
            (
                "decrease to the previous step's weight",
                50,
                3,
                Some(100),
                50,
            ),
            // TestDynamicScalingDecreaseWeightAccordingToStableAvailabilityWhenAborted
            (
                "decrease as the stable becomes available",
                0,
                1,
                Some(100),
                80,
            ),
            // TestDynamicScalingDecreaseWeightAccordingToStableAvailabilityWhenAbortedAndResetService
            ("reach 0 once the stable is full", 0, 5, Some(20), 0),
            (
                "no recorded weight: the larger of what the stable lacks and the step",
                50,
                3,
                None,
                50,
            ),
            (
                "the stable is still scaling up: keep the weight",
                50,
                2,
                Some(60),
                60,
            ),
        ];
        for (name, desired, stable_available, current, want) in cases {
            let got = abort_traffic_weight(&AbortTrafficInput {
                spec_replicas: 5,
                max_weight: 100,
                stable_available,
                desired_canary_weight: desired,
                current_canary_weight: current,
            });
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn dynamic_abort_walks_the_steps_back_with_max_traffic_weight() {
        // 10 replicas aborted at 600 of 1000 with steps 200, 400, 600: the canary's 6 pods step
        // back to 400 (4 pods) while the stable has 4 available, then further.
        let walk = |stable_available: i32, canary_available: i32| {
            dynamic_abort_weight(&DynamicAbortInput {
                spec_replicas: 10,
                max_weight: 1000,
                stable_available,
                canary_available,
                explicit_abort_delay: false,
                step_weights: &[200, 400, 600],
            })
        };
        assert_eq!(walk(4, 6), 400);
        assert_eq!(walk(6, 4), 200);
        assert_eq!(walk(8, 2), 0);
        assert_eq!(walk(10, 0), 0);
    }

    #[test]
    fn all_desired_are_available() {
        // Upstream's TestAllDesiredAreAvailable (a nil spec.replicas is 1).
        let cases = [
            ("all desired pods are available", Some(rs(10, 10)), 10, true),
            (
                "not all desired pods are available",
                Some(rs(10, 9)),
                10,
                false,
            ),
            ("ReplicaSet is nil", None, 10, false),
            (
                "spec.replicas nil (1) and desired != 1",
                Some(rs(1, 10)),
                10,
                false,
            ),
            (
                "spec.replicas nil (1) and desired is 1",
                Some(rs(1, 1)),
                1,
                true,
            ),
        ];
        for (name, state, desired, want) in cases {
            assert_eq!(
                replica_progress_threshold_met(None, state, desired),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn all_replica_progress_threshold_met() {
        // Upstream's TestAllReplicaProgressThresholdMet (unset spec.replicas read as 0 here,
        // as Go's zero value in its table).
        let cases = [
            (
                "percentage: 90% availability passes",
                Some(ProgressThreshold::Percent(90)),
                Some(rs(0, 9)),
                10,
                true,
            ),
            (
                "pods: 9 available passes",
                Some(ProgressThreshold::Pods(9)),
                Some(rs(0, 9)),
                10,
                true,
            ),
            (
                "percentage: under 90% fails",
                Some(ProgressThreshold::Percent(90)),
                Some(rs(0, 8)),
                10,
                false,
            ),
            (
                "pods: under 8 fails",
                Some(ProgressThreshold::Pods(8)),
                Some(rs(0, 7)),
                10,
                false,
            ),
            (
                "a negative threshold means 100%",
                Some(ProgressThreshold::Pods(-100)),
                Some(rs(10, 10)),
                10,
                true,
            ),
            (
                "no threshold means 100% of a ReplicaSet wanting them",
                None,
                Some(rs(5, 10)),
                10,
                false,
            ),
            (
                "a nil ReplicaSet never meets it",
                Some(ProgressThreshold::Pods(5)),
                None,
                10,
                false,
            ),
            (
                "percentages well above the threshold pass",
                Some(ProgressThreshold::Percent(100)),
                Some(rs(0, 100)),
                10,
                true,
            ),
            (
                "0 desired meets a percentage",
                Some(ProgressThreshold::Percent(90)),
                Some(rs(0, 0)),
                0,
                true,
            ),
        ];
        for (name, threshold, state, desired, want) in cases {
            assert_eq!(
                replica_progress_threshold_met(threshold, state, desired),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn at_desired_counts_honours_the_progress_threshold() {
        // A traffic-routed canary wanting 10 pods with 8 available: done at 80%, not at 90%.
        let check = |threshold| {
            at_desired_replica_counts(&DesiredCountsCheck {
                desired: ReplicaCounts {
                    canary: 10,
                    stable: 10,
                },
                canary: Some(rs(10, 8)),
                stable: Some(rs(10, 10)),
                stable_created: 10,
                traffic_routed: true,
                dynamic_stable_scale: false,
                progress_threshold: threshold,
                others: &[],
            })
        };
        assert!(check(Some(ProgressThreshold::Percent(80))));
        assert!(!check(Some(ProgressThreshold::Percent(90))));
        assert!(check(Some(ProgressThreshold::Pods(8))));
        assert!(!check(None));
    }

    #[test]
    fn calculate_replica_counts_for_canary_stable_rs_edge_cases() {
        // Upstream's rollout has an empty stable hash, so the weight is 100.
        let scale = canary_scale(&CanaryScaleInput {
            stable_is_current: true,
            step_weight: 10,
            ..CanaryScaleInput::default()
        });
        assert_eq!(scale, CanaryScale::Weight(100));
        let input = |stable| BasicCanaryInput {
            spec_replicas: 10,
            weight: 100,
            max_surge: Some(int(0)),
            max_unavailable: Some(int(1)),
            canary: Some(rs(9, 9)),
            stable,
            others: &[],
        };
        let want = ReplicaCounts {
            canary: 10,
            stable: 0,
        };
        assert_eq!(basic_canary_replica_counts(&input(StableRs::Missing)), want);
        assert_eq!(
            basic_canary_replica_counts(&input(StableRs::SameAsCanary)),
            want
        );
    }

    #[test]
    fn traffic_weight_to_replicas_rounds_up() {
        assert_eq!(traffic_weight_to_replicas(10, 0, 100), 0);
        assert_eq!(traffic_weight_to_replicas(10, 20, 100), 2);
        assert_eq!(traffic_weight_to_replicas(10, 25, 100), 3);
        assert_eq!(traffic_weight_to_replicas(10, 33, 100), 4);
        assert_eq!(traffic_weight_to_replicas(10, 99, 100), 10);
        assert_eq!(traffic_weight_to_replicas(10, 100, 100), 10);
        assert_eq!(traffic_weight_to_replicas(23, 100_000_000, 100_000_000), 23);
        // maxTrafficWeight 1000: 500 is half.
        assert_eq!(traffic_weight_to_replicas(10, 500, 1000), 5);
        assert_eq!(traffic_weight_to_replicas(10, 1, 1000), 1);
    }

    #[test]
    fn max_traffic_weight_sizes_the_canary() {
        // NGINX with maxTrafficWeight 1000, 10 replicas, setWeight 500: 5 canary pods (not 50).
        let scale = canary_scale(&CanaryScaleInput {
            traffic_routed: true,
            step_weight: 500,
            max_weight: 1000,
            ..CanaryScaleInput::default()
        });
        let got = traffic_routed_canary_replica_counts(&TrafficRoutedCanaryInput {
            spec_replicas: 10,
            scale,
            max_weight: 1000,
            dynamic_stable_scale: true,
            aborted: false,
            min_pods_per_replica_set: None,
            current_weights: Some(TrafficWeights {
                canary: 500,
                stable: 500,
            }),
        });
        assert_eq!(
            got,
            ReplicaCounts {
                canary: 5,
                stable: 5
            }
        );
        // Promoted fully, the canary takes the full weight: all pods.
        let full = canary_scale(&CanaryScaleInput {
            promote_full: true,
            max_weight: 1000,
            ..CanaryScaleInput::default()
        });
        assert_eq!(full, CanaryScale::Weight(1000));
    }

    #[test]
    fn get_replicas_for_scale_down() {
        let cases = [
            ("test rs is nil", None, false, 0),
            (
                "test expected replicas is less than actual replicas",
                Some(rs(3, 5)),
                false,
                3,
            ),
            ("test ignore availability", Some(rs(3, 2)), true, 3),
            ("test not ignore availability", Some(rs(3, 2)), false, 2),
        ];
        for (name, state, ignore_availability, want) in cases {
            assert_eq!(
                replicas_for_scale_down(state, ignore_availability),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn get_canary_replicas_or_weight() {
        let cases = [
            (
                "test full promote rollout",
                CanaryScaleInput {
                    promote_full: true,
                    // Upstream's rollout has no status.stableRS at all.
                    stable_is_current: true,
                    ..CanaryScaleInput::default()
                },
                CanaryScale::Weight(100),
            ),
            (
                "test canary step weight",
                CanaryScaleInput {
                    traffic_routed: true,
                    set_canary_scale: scs(None, Some(20), false),
                    step_weight: 10,
                    ..CanaryScaleInput::default()
                },
                CanaryScale::Weight(20),
            ),
            (
                "test canary step replicas",
                CanaryScaleInput {
                    traffic_routed: true,
                    set_canary_scale: scs(Some(5), None, false),
                    step_weight: 10,
                    ..CanaryScaleInput::default()
                },
                CanaryScale::Replicas(5),
            ),
            (
                "test get current step weight",
                CanaryScaleInput {
                    aborted: true,
                    stable_is_current: true,
                    step_weight: 100,
                    ..CanaryScaleInput::default()
                },
                CanaryScale::Weight(100),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(canary_scale(&input), want, "{name}");
        }
    }

    #[test]
    fn at_desired_replica_counts_for_canary() {
        // Upstream: basic canary of 4 replicas, maxSurge 1, maxUnavailable 1, no older
        // ReplicaSets; (name, weight, canary, canary created, stable, stable created, want).
        let cases = [
            (
                "we are at desired replica counts and availability",
                50,
                rs(2, 2),
                2,
                rs(2, 2),
                2,
                true,
            ),
            (
                "new replicaset is not at desired counts or availability",
                50,
                rs(2, 1),
                2,
                rs(2, 2),
                2,
                false,
            ),
            (
                "stable replicaset is not at desired counts or availability",
                75,
                rs(3, 3),
                3,
                rs(2, 2),
                2,
                false,
            ),
            (
                "stable replicaset is not at desired availability but is at correct count",
                75,
                rs(3, 3),
                1,
                rs(1, 0),
                1,
                true,
            ),
            (
                "test that when status field lags behind spec.replicas we fail",
                50,
                rs(2, 2),
                2,
                rs(2, 2),
                3,
                false,
            ),
        ];
        for (name, weight, canary, _canary_created, stable, stable_created, want) in cases {
            let desired = basic_canary_replica_counts(&BasicCanaryInput {
                spec_replicas: 4,
                weight,
                max_surge: Some(int(1)),
                max_unavailable: Some(int(1)),
                canary: Some(canary),
                stable: StableRs::Distinct(stable),
                others: &[],
            });
            let got = at_desired_replica_counts(&DesiredCountsCheck {
                desired,
                canary: Some(canary),
                stable: Some(stable),
                stable_created,
                traffic_routed: false,
                dynamic_stable_scale: false,
                progress_threshold: None,
                others: &[],
            });
            assert_eq!(got, want, "{name} (desired {desired:?})");
        }
    }

    #[test]
    fn resolve_fenceposts_table() {
        // Upstream feeds strings; `None` stands for a nil pointer, which resolves as 0.
        let cases = [
            (Some("0%"), Some("0%"), 0, 0, 1),
            (Some("39%"), Some("39%"), 10, 4, 3),
            (None, Some("39%"), 10, 0, 3),
            (Some("39%"), None, 10, 4, 0),
            (None, None, 10, 0, 1),
        ];
        let value = |text: Option<&str>| text.map_or(int(0), string);
        for (number, (surge, unavailable, desired, want_surge, want_unavailable)) in
            cases.into_iter().enumerate()
        {
            assert_eq!(
                resolve_fenceposts(value(surge), value(unavailable), desired),
                (want_surge, want_unavailable),
                "case {number}"
            );
        }
        // The two upstream error cases: the bad value no longer parses.
        assert!(matches!(
            "oops".parse::<IntOrPercent>(),
            Err(ParseIntOrPercentError::Invalid { .. })
        ));
        assert!(matches!(
            "urg".parse::<IntOrPercent>(),
            Err(ParseIntOrPercentError::Invalid { .. })
        ));
    }

    #[test]
    fn max_surge_table() {
        assert_eq!(max_surge(10, Some(int(5))), 5, "maxSurge with int");
        assert_eq!(
            max_surge(10, Some(string("50%"))),
            5,
            "maxSurge with percents"
        );
    }

    #[test]
    fn max_unavailable_table() {
        let cases = [
            ("maxUnavailable less than replicas", 10, int(5), 5),
            ("maxUnavailable equal replicas", 10, int(10), 10),
            ("maxUnavailable greater than replicas", 5, int(10), 5),
            ("maxUnavailable with replicas is 0", 0, int(10), 0),
            (
                "maxUnavailable less than replicas with percents",
                10,
                string("50%"),
                5,
            ),
            (
                "maxUnavailable equal replicas with percents",
                10,
                string("100%"),
                10,
            ),
            (
                "maxUnavailable greater than replicas with percents",
                5,
                string("100%"),
                5,
            ),
        ];
        for (name, replicas, unavailable, want) in cases {
            assert_eq!(
                max_unavailable(replicas, Some(int(1)), Some(unavailable)),
                want,
                "{name}"
            );
        }
    }

    // Checks beyond upstream's tables.

    #[test]
    fn defaults_are_25_percent() {
        assert_eq!(max_surge(10, None), 3);
        assert_eq!(max_unavailable(10, None, None), 2);
        assert_eq!(max_unavailable(1, None, None), 0);
        assert_eq!(max_unavailable(1, Some(string("0%")), None), 1);
    }

    #[test]
    fn parses_and_displays_int_or_percent() {
        assert_eq!(string("25%"), IntOrPercent::Percent(25));
        assert_eq!("3".parse::<IntOrPercent>(), Ok(int(3)));
        assert_eq!(IntOrPercent::Percent(25).to_string(), "25%");
        assert_eq!(int(3).to_string(), "3");
        for bad in ["", "%", "25%%", "2%5", " 25%", "25 %", "1.5", "99999999999"] {
            let err = bad.parse::<IntOrPercent>().expect_err(bad);
            assert!(
                matches!(err, ParseIntOrPercentError::Invalid { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("25%"), "{err}");
            assert!(err.source().is_some());
        }
        assert_eq!(
            "-1%".parse::<IntOrPercent>(),
            Err(ParseIntOrPercentError::Negative {
                input: "-1%".into()
            })
        );
    }

    #[test]
    fn scaled_value_rounds_as_asked() {
        assert_eq!(IntOrPercent::Percent(25).scaled_value(10, true), 3);
        assert_eq!(IntOrPercent::Percent(25).scaled_value(10, false), 2);
        assert_eq!(IntOrPercent::Percent(200).scaled_value(3, true), 6);
        assert_eq!(IntOrPercent::Percent(-5).scaled_value(10, true), 0);
        assert_eq!(int(-5).scaled_value(10, true), 0);
        assert_eq!(
            IntOrPercent::Percent(i32::MAX).scaled_value(i32::MAX, true),
            i32::MAX
        );
    }

    #[test]
    fn out_of_range_inputs_are_clamped() {
        // A basic canary weight above 100 is 100, below 0 is 0.
        assert_eq!(
            desired_canary_and_stable_replicas(10, 150, 0),
            desired_canary_and_stable_replicas(10, 100, 0)
        );
        assert_eq!(
            desired_canary_and_stable_replicas(10, -5, 1),
            desired_canary_and_stable_replicas(10, 0, 1)
        );
        assert_eq!(
            desired_canary_and_stable_replicas(-3, 50, 1),
            ReplicaCounts::default()
        );
        // A traffic-routed weight above 100 over-provisions the canary; the stable never
        // goes negative with dynamic stable scaling.
        let got = traffic_routed_canary_replica_counts(&TrafficRoutedCanaryInput {
            spec_replicas: 4,
            scale: CanaryScale::Weight(200),
            max_weight: 100,
            dynamic_stable_scale: true,
            aborted: false,
            min_pods_per_replica_set: None,
            current_weights: None,
        });
        assert_eq!(
            got,
            ReplicaCounts {
                canary: 8,
                stable: 0
            }
        );
        assert_eq!(apply_min_pods_per_replica_set(0, Some(3), 10), 0);
        assert_eq!(apply_min_pods_per_replica_set(1, Some(3), 10), 3);
        assert_eq!(apply_min_pods_per_replica_set(5, None, 10), 5);
        // The minimum never exceeds the Rollout's replicas (upstream #4570).
        assert_eq!(apply_min_pods_per_replica_set(1, Some(3), 2), 2);
        assert_eq!(apply_min_pods_per_replica_set(1, Some(3), -1), 1);
    }

    /// A small deterministic generator, so the sweep needs no dependencies.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn coin(&mut self) -> bool {
            self.next() & 1 == 0
        }

        fn pick(&mut self) -> i32 {
            const EDGES: [i32; 9] = [i32::MIN, -100, -1, 0, 1, 2, 100, 101, i32::MAX];
            match self.next() % 4 {
                0 => EDGES[(self.next() % 9) as usize],
                1 => (self.next() % 1_000) as i32 - 10,
                _ => (self.next() % 20) as i32,
            }
        }

        fn int_or_percent(&mut self) -> Option<IntOrPercent> {
            match self.next() % 3 {
                0 => None,
                1 => Some(IntOrPercent::Int(self.pick())),
                _ => Some(IntOrPercent::Percent(self.pick())),
            }
        }

        fn rs(&mut self) -> RsState {
            RsState::new(self.pick(), self.pick())
        }
    }

    #[test]
    fn never_panics_and_never_returns_negative_counts() {
        let mut rng = Lcg(0x5eed);
        for _ in 0..200_000 {
            let others: Vec<RsState> = (0..rng.next() % 3).map(|_| rng.rs()).collect();
            let canary = if rng.next() & 3 == 0 {
                None
            } else {
                Some(rng.rs())
            };
            let stable = match rng.next() % 3 {
                0 => StableRs::Missing,
                1 => StableRs::SameAsCanary,
                _ => StableRs::Distinct(rng.rs()),
            };
            let basic = basic_canary_replica_counts(&BasicCanaryInput {
                spec_replicas: rng.pick(),
                weight: rng.pick(),
                max_surge: rng.int_or_percent(),
                max_unavailable: rng.int_or_percent(),
                canary,
                stable,
                others: &others,
            });
            assert!(basic.canary >= 0 && basic.stable >= 0, "{basic:?}");

            let scale = if rng.coin() {
                CanaryScale::Weight(rng.pick())
            } else {
                CanaryScale::Replicas(rng.pick())
            };
            let routed = traffic_routed_canary_replica_counts(&TrafficRoutedCanaryInput {
                spec_replicas: rng.pick(),
                scale,
                max_weight: rng.pick(),
                dynamic_stable_scale: rng.coin(),
                aborted: rng.coin(),
                min_pods_per_replica_set: if rng.coin() { Some(rng.pick()) } else { None },
                current_weights: Some(TrafficWeights {
                    canary: rng.pick(),
                    stable: rng.pick(),
                }),
            });
            assert!(routed.canary >= 0 && routed.stable >= 0, "{routed:?}");

            let split = desired_canary_and_stable_replicas(rng.pick(), rng.pick(), rng.pick());
            assert!(split.canary >= 0 && split.stable >= 0, "{split:?}");
            let (surge, unavailable) = resolve_fenceposts(
                rng.int_or_percent().unwrap_or(int(0)),
                rng.int_or_percent().unwrap_or(int(0)),
                rng.pick(),
            );
            assert!(surge >= 0 && unavailable >= 0);
            let _ = at_desired_replica_counts(&DesiredCountsCheck {
                desired: basic,
                canary,
                stable: Some(rng.rs()),
                stable_created: rng.pick(),
                traffic_routed: rng.coin(),
                dynamic_stable_scale: rng.coin(),
                progress_threshold: match rng.pick() % 3 {
                    0 => None,
                    1 => Some(ProgressThreshold::Percent(rng.pick())),
                    _ => Some(ProgressThreshold::Pods(rng.pick())),
                },
                others: &others,
            });
            let steps = [rng.pick(), rng.pick(), rng.pick()];
            let w = dynamic_abort_weight(&DynamicAbortInput {
                spec_replicas: rng.pick(),
                max_weight: rng.pick(),
                stable_available: rng.pick(),
                canary_available: rng.pick(),
                explicit_abort_delay: rng.coin(),
                step_weights: &steps,
            });
            assert!(w == 0 || steps.contains(&w));
            let _ = abort_traffic_weight(&AbortTrafficInput {
                spec_replicas: rng.pick(),
                max_weight: rng.pick(),
                stable_available: rng.pick(),
                desired_canary_weight: rng.pick(),
                current_canary_weight: rng.coin().then(|| rng.pick()),
            });
            let _ = traffic_weight_to_replicas(rng.pick(), rng.pick(), rng.pick());
        }
    }

    #[test]
    fn halfway_below_full_weight_without_surge_rounds_down() {
        // Upstream returns (0, replicas) for these; see desired_canary_and_stable_replicas.
        for (replicas, weight, canary) in [(2, 75, 1), (10, 95, 9), (50, 99, 49), (5, 90, 4)] {
            let want = ReplicaCounts {
                canary,
                stable: replicas - canary,
            };
            assert_eq!(
                desired_canary_and_stable_replicas(replicas, weight, 0),
                want
            );
        }
    }

    #[test]
    fn split_stays_near_weight_and_within_one_surge_pod() {
        for spec in 0..=200 {
            for weight in 0..=100 {
                for surge in [0, 1] {
                    let split = desired_canary_and_stable_replicas(spec, weight, surge);
                    let total = split.canary + split.stable;
                    assert!(
                        total == spec || (surge > 0 && total == spec + 1),
                        "{spec} {weight} {surge}: {split:?}"
                    );
                    if spec > 1 && (1..=99).contains(&weight) {
                        assert!(
                            split.canary > 0 && split.stable > 0,
                            "{spec} {weight} {surge}: {split:?}"
                        );
                    }
                }
            }
        }
    }
}
