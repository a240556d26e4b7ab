//! Text rendering of [`RolloutInfo`] and list lines, after upstream's `get rollout` and
//! `list rollouts`. Pure: ages come from an injected `now`, colour from a flag.
//!
//! Differences from upstream: trailing blanks at the end of lines are trimmed, and words
//! without a colour are printed without an (empty) escape sequence.

use super::info::{
    AnalysisRunInfo, ExperimentInfo, ExperimentListLine, ImageInfo, ListLine, ReplicaSetInfo,
    RolloutInfo, experiment_images, icon, tag,
};
use k8s_openapi::jiff::Timestamp;
use std::fmt::Write as _;

const RED: u8 = 31;
const GREEN: u8 = 32;
const YELLOW: u8 = 33;
const HI_BLUE: u8 = 94;

/// Output options.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    /// ANSI colours (on a terminal, unless `--no-color` or `TERM=dumb`).
    pub color: bool,
}

impl Style {
    pub const PLAIN: Style = Style { color: false };
    pub const COLOR: Style = Style { color: true };

    /// Upstream's colour of a well-known word (icon, stack tag, analysis phase).
    fn code(word: &str) -> Option<u8> {
        Some(match word {
            icon::WAITING | icon::UNKNOWN | tag::CANARY => YELLOW,
            icon::PROGRESSING | tag::PREVIEW | "Pending" | "Running" => HI_BLUE,
            icon::WARNING | icon::BAD => RED,
            icon::OK | tag::STABLE | tag::ACTIVE => GREEN,
            _ => return None,
        })
    }

    /// `s` coloured as `word` is.
    pub fn paint_as(&self, s: &str, word: &str) -> String {
        match (self.color, Style::code(word)) {
            (true, Some(c)) => format!("\x1b[{c}m{s}\x1b[0m"),
            _ => s.to_string(),
        }
    }

    /// A well-known word in its colour.
    pub fn paint(&self, word: &str) -> String {
        self.paint_as(word, word)
    }
}

/// Kubernetes' `duration.HumanDuration` of `now - then` (`<unknown>` without a time).
pub fn age(then: Option<Timestamp>, now: Timestamp) -> String {
    let Some(then) = then else {
        return "<unknown>".into();
    };
    human_duration(now.as_second() - then.as_second())
}

/// Kubernetes' `duration.HumanDuration` of a number of seconds.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Characters a terminal shows (ANSI escape sequences take no room).
pub fn visible_width(s: &str) -> usize {
    let mut n = 0;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        n += 1;
    }
    n
}

/// Go's `tabwriter` with padding 2 over tab-separated cells: every cell but the last of a line
/// is padded to its column's width. Trailing blanks are trimmed.
pub fn tabulate(lines: &[String]) -> String {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(visible_width(cell));
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] + 2 - visible_width(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn prefixes(is_last: bool, sub: &str) -> (String, String) {
    if is_last {
        (format!("{sub}└──"), format!("{sub}   "))
    } else {
        (format!("{sub}├──"), format!("{sub}│  "))
    }
}

fn format_image(image: &ImageInfo, style: Style) -> String {
    if image.tags.is_empty() {
        return image.image.clone();
    }
    let tags: Vec<String> = image.tags.iter().map(|t| style.paint(t)).collect();
    format!("{} ({})", image.image, tags.join(", "))
}

/// The `get rollout` view: the summary, then the tree.
pub fn rollout(info: &RolloutInfo, now: Timestamp, style: Style) -> String {
    let mut out = String::new();
    let mut field = |label: &str, value: &str| {
        let _ = writeln!(out, "{label:<17}{value}");
    };
    field("Name:", &info.name);
    field("Namespace:", &info.namespace);
    field(
        "Status:",
        &format!("{} {}", style.paint(info.icon), info.status),
    );
    if !info.message.is_empty() {
        field("Message:", &info.message);
    }
    if let Some(waiting) = &info.waiting {
        field("Waiting:", waiting);
    }
    field("Strategy:", &info.strategy);
    if info.strategy == "Canary" {
        field("  Step:", info.step.as_deref().unwrap_or_default());
        field(
            "  SetWeight:",
            info.set_weight.as_deref().unwrap_or_default(),
        );
        field(
            "  ActualWeight:",
            info.actual_weight.as_deref().unwrap_or_default(),
        );
    }
    for (i, image) in info.images.iter().enumerate() {
        let label = if i == 0 { "Images:" } else { "" };
        field(label, &format_image(image, style));
    }
    out.push_str("Replicas:\n");
    let mut field = |label: &str, value: i32| {
        let _ = writeln!(out, "{label:<17}{value}");
    };
    field("  Desired:", info.desired);
    field("  Current:", info.current);
    field("  Updated:", info.updated);
    field("  Ready:", info.ready);
    field("  Available:", info.available);
    out.push('\n');
    out.push_str(&tree(info, now, style));
    out
}

/// The `NAME KIND STATUS AGE INFO` tree of a Rollout.
pub fn tree(info: &RolloutInfo, now: Timestamp, style: Style) -> String {
    let mut lines = vec!["NAME\tKIND\tSTATUS\tAGE\tINFO".to_string()];
    lines.push(format!(
        "{} {}\tRollout\t{} {}\t{}\t",
        icon::ROLLOUT,
        info.name,
        style.paint(info.icon),
        info.status,
        age(info.creation_timestamp, now)
    ));
    let revisions = info.revisions();
    for (i, rev) in revisions.iter().enumerate() {
        let (prefix, sub) = prefixes(i + 1 == revisions.len(), "");
        lines.push(format!(
            "{prefix}{} revision:{rev}\t\t \t\t",
            icon::REVISION
        ));
        let rss: Vec<&ReplicaSetInfo> = info
            .replica_sets
            .iter()
            .filter(|r| r.revision == *rev)
            .collect();
        let exs: Vec<&ExperimentInfo> = info
            .experiments
            .iter()
            .filter(|e| e.revision == *rev)
            .collect();
        let ars: Vec<&AnalysisRunInfo> = info
            .analysis_runs
            .iter()
            .filter(|a| a.revision == *rev)
            .collect();
        let total = rss.len() + exs.len() + ars.len();
        let mut n = 0;
        for rs in rss {
            n += 1;
            let (p, s) = prefixes(n == total, &sub);
            replica_set_lines(&mut lines, rs, &p, &s, now, style);
        }
        for ex in exs {
            n += 1;
            let (p, s) = prefixes(n == total, &sub);
            experiment_lines(&mut lines, ex, &p, &s, now, style);
        }
        for ar in ars {
            n += 1;
            let (p, s) = prefixes(n == total, &sub);
            analysis_run_lines(&mut lines, ar, &p, &s, now, style);
        }
    }
    tabulate(&lines)
}

/// The `get experiment` view: the summary, then the tree.
pub fn experiment(info: &ExperimentInfo, now: Timestamp, style: Style) -> String {
    let mut out = String::new();
    let mut field = |label: &str, value: &str| {
        let _ = writeln!(out, "{label:<17}{value}");
    };
    field("Name:", &info.name);
    field("Namespace:", &info.namespace);
    field(
        "Status:",
        &format!("{} {}", style.paint(info.icon), info.status),
    );
    if !info.message.is_empty() {
        field("Message:", &info.message);
    }
    for (i, image) in experiment_images(info).iter().enumerate() {
        let label = if i == 0 { "Images:" } else { "" };
        field(label, &format_image(image, style));
    }
    out.push('\n');
    let mut lines = vec!["NAME\tKIND\tSTATUS\tAGE\tINFO".to_string()];
    experiment_lines(&mut lines, info, "", "", now, style);
    out.push_str(&tabulate(&lines));
    out
}

/// An Experiment and its ReplicaSets (with pods) and AnalysisRuns, as upstream's
/// `PrintExperimentInfo`.
fn experiment_lines(
    lines: &mut Vec<String>,
    ex: &ExperimentInfo,
    prefix: &str,
    sub: &str,
    now: Timestamp,
    style: Style,
) {
    lines.push(format!(
        "{prefix}{} {}\tExperiment\t{} {}\t{}\t",
        icon::EXPERIMENT,
        style.paint_as(&ex.name, &ex.status),
        style.paint(ex.icon),
        ex.status,
        age(ex.creation_timestamp, now)
    ));
    let total = ex.replica_sets.len() + ex.analysis_runs.len();
    let mut n = 0;
    for rs in &ex.replica_sets {
        n += 1;
        let (p, s) = prefixes(n == total, sub);
        replica_set_lines(lines, rs, &p, &s, now, style);
    }
    for ar in &ex.analysis_runs {
        n += 1;
        let (p, s) = prefixes(n == total, sub);
        analysis_run_lines(lines, ar, &p, &s, now, style);
    }
}

fn replica_set_lines(
    lines: &mut Vec<String>,
    rs: &ReplicaSetInfo,
    prefix: &str,
    sub: &str,
    now: Timestamp,
    style: Style,
) {
    let mut cols = Vec::new();
    let mut name = rs.name.clone();
    if rs.stable {
        cols.push(style.paint(tag::STABLE));
        name = style.paint_as(&name, tag::STABLE);
    }
    if rs.canary {
        cols.push(style.paint(tag::CANARY));
        name = style.paint_as(&rs.name, tag::CANARY);
    } else if rs.active {
        cols.push(style.paint(tag::ACTIVE));
        name = style.paint_as(&rs.name, tag::ACTIVE);
    } else if rs.preview {
        cols.push(style.paint(tag::PREVIEW));
        name = style.paint_as(&rs.name, tag::PREVIEW);
    }
    if let Some(deadline) = &rs.scale_down_deadline {
        let delay = match deadline.parse::<Timestamp>() {
            Ok(d) if d < now => "passed".to_string(),
            Ok(d) => human_duration(d.as_second() - now.as_second()),
            Err(_) => String::new(),
        };
        cols.push(format!("delay:{delay}"));
    }
    lines.push(format!(
        "{prefix}{} {name}\tReplicaSet\t{} {}\t{}\t{}",
        icon::REPLICA_SET,
        style.paint(rs.icon),
        rs.status,
        age(rs.creation_timestamp, now),
        cols.join(",")
    ));
    for (i, pod) in rs.pods.iter().enumerate() {
        let (p, _) = prefixes(i + 1 == rs.pods.len(), sub);
        let mut info = vec![format!("ready:{}", pod.ready)];
        if pod.restarts > 0 {
            info.push(format!("restarts:{}", pod.restarts));
        }
        lines.push(format!(
            "{p}{} {}\tPod\t{} {}\t{}\t{}",
            icon::POD,
            pod.name,
            style.paint(pod.icon),
            pod.status,
            age(pod.creation_timestamp, now),
            info.join(",")
        ));
    }
}

fn analysis_run_lines(
    lines: &mut Vec<String>,
    ar: &AnalysisRunInfo,
    prefix: &str,
    sub: &str,
    now: Timestamp,
    style: Style,
) {
    let mut cols = Vec::new();
    for (count, icon) in [
        (ar.successful, icon::OK),
        (ar.failed, icon::BAD),
        (ar.inconclusive, icon::UNKNOWN),
        (ar.error, icon::WARNING),
    ] {
        if count > 0 {
            cols.push(format!("{} {count}", style.paint(icon)));
        }
    }
    lines.push(format!(
        "{prefix}{} {}\tAnalysisRun\t{} {}\t{}\t{}",
        icon::ANALYSIS,
        style.paint_as(&ar.name, &ar.status),
        style.paint(ar.icon),
        ar.status,
        age(ar.creation_timestamp, now),
        cols.join(",")
    ));
    for (i, job) in ar.jobs.iter().enumerate() {
        let (p, _) = prefixes(i + 1 == ar.jobs.len(), sub);
        lines.push(format!(
            "{p}{} {}\tJob\t{} {}\t{}\t",
            icon::JOB,
            style.paint_as(&job.name, &job.status),
            style.paint(job.icon),
            job.status,
            age(job.creation_timestamp, now)
        ));
    }
}

/// The header of `list rollouts` (with `NAMESPACE` first for `-A`).
pub fn list_header(all_namespaces: bool) -> String {
    let h = "NAME\tSTRATEGY\tSTATUS\tSTEP\tSET-WEIGHT\tACTUAL-WEIGHT\tREADY\tDESIRED\tUP-TO-DATE\tAVAILABLE";
    if all_namespaces {
        format!("NAMESPACE\t{h}")
    } else {
        h.to_string()
    }
}

/// One `list rollouts` line, its cells padded as upstream's `columnFmtString` pads them.
pub fn list_line(l: &ListLine, all_namespaces: bool) -> String {
    let mut s = format!(
        "{:<10}\t{:<9}\t{:<12}\t{:<4}\t{:<10}\t{:<13}\t{:<5}\t{:<7}\t{:<10}\t{:<9}",
        l.name,
        l.strategy,
        l.status,
        l.step,
        l.set_weight,
        l.actual_weight,
        l.ready,
        l.desired,
        l.up_to_date,
        l.available
    );
    if all_namespaces {
        s = format!("{:<9}\t{s}", l.namespace);
    }
    s
}

/// The `list rollouts` table.
pub fn list(lines: &[ListLine], all_namespaces: bool) -> String {
    let mut rows = vec![list_header(all_namespaces)];
    rows.extend(lines.iter().map(|l| list_line(l, all_namespaces)));
    tabulate(&rows)
}

/// The `list experiments` table (with `NAMESPACE` first for `-A`), its cells padded as
/// upstream's `expColumnFmtString` pads them.
pub fn list_experiments(
    lines: &[ExperimentListLine],
    all_namespaces: bool,
    now: Timestamp,
) -> String {
    let mut h = "NAME\tSTATUS\tDURATION\tREMAINING\tAGE".to_string();
    if all_namespaces {
        h = format!("NAMESPACE\t{h}");
    }
    let mut rows = vec![h];
    for l in lines {
        let mut row = format!(
            "{:<10}\t{:<6}\t{:<8}\t{:<9}\t{:<3}",
            l.name,
            l.status,
            l.duration.map_or("-".into(), human_duration),
            l.remaining.map_or("-".into(), human_duration),
            age(l.creation_timestamp, now)
        );
        if all_namespaces {
            row = format!("{:<9}\t{row}", l.namespace);
        }
        rows.push(row);
    }
    tabulate(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_as_kubernetes_prints_them() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60 * 5, "3h5m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (50 * 3600, "2d2h"),
            (8 * 24 * 3600, "8d"),
            (2 * 365 * 24 * 3600, "2y"),
            (2 * 365 * 24 * 3600 + 24 * 3600, "2y1d"),
            (9 * 365 * 24 * 3600, "9y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
        assert_eq!(age(None, Timestamp::UNIX_EPOCH), "<unknown>");
    }

    #[test]
    fn tabulate_aligns_all_but_the_last_cell_ignoring_escapes() {
        let lines = vec![
            "A\tBB\tlast".to_string(),
            "\x1b[32mCCC\x1b[0m\tD\t".to_string(),
        ];
        assert_eq!(tabulate(&lines), "A    BB  last\n\x1b[32mCCC\x1b[0m  D\n");
        assert_eq!(visible_width("\x1b[94m◌\x1b[0m x"), 3);
    }

    #[test]
    fn colours_only_when_asked() {
        assert_eq!(Style::PLAIN.paint("canary"), "canary");
        assert_eq!(Style::COLOR.paint("canary"), "\x1b[33mcanary\x1b[0m");
        assert_eq!(Style::COLOR.paint("॥"), "॥");
        assert_eq!(
            Style::COLOR.paint_as("rs-1", "stable"),
            "\x1b[32mrs-1\x1b[0m"
        );
    }
}

#[cfg(test)]
mod experiment_tests {
    use super::*;
    use crate::cli::info::{ExperimentInfo, ExperimentListLine, ExperimentModel, Model};
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-01-01T00:10:00Z".parse().unwrap()
    }

    fn fixture() -> ExperimentModel {
        let ex = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
            "metadata": {"name": "ab", "namespace": "ns", "uid": "ex1",
                         "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"duration": "1h", "templates": []},
            "status": {"phase": "Running", "message": "all good",
                       "availableAt": "2024-01-01T00:05:00Z"}});
        let rs = |t: &str, image: &str, replicas: i32| {
            serde_json::from_value(json!({
                "metadata": {"name": format!("ab-{t}"), "uid": format!("rs-{t}"),
                    "creationTimestamp": "2024-01-01T00:01:00Z",
                    "annotations": {"experiment.argoproj.io/template-name": t},
                    "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
                        "name": "ab", "uid": "ex1", "controller": true}]},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"t": t}},
                         "template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
                "status": {"replicas": replicas, "availableReplicas": replicas}
            }))
            .unwrap()
        };
        let pod = serde_json::from_value(json!({
            "metadata": {"name": "ab-canary-x", "creationTimestamp": "2024-01-01T00:02:00Z",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "ab-canary", "uid": "rs-canary"}]},
            "spec": {"containers": [{"name": "app"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "app", "ready": true,
                "restartCount": 0, "image": "", "imageID": "", "state": {"running": {}}}]}
        }))
        .unwrap();
        let run = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
            "metadata": {"name": "ab-errors", "creationTimestamp": "2024-01-01T00:05:00Z",
                "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Experiment",
                    "name": "ab", "uid": "ex1", "controller": true}]},
            "spec": {"metrics": []},
            "status": {"phase": "Running", "metricResults": [{"name": "m", "successful": 2}]}
        }))
        .unwrap();
        ExperimentModel {
            experiment: serde_json::from_value(ex).unwrap(),
            replica_sets: vec![rs("baseline", "app:v1", 1), rs("canary", "app:v2", 1)],
            pods: vec![pod],
            analysis_runs: vec![run],
        }
    }

    #[test]
    fn get_experiment_view() {
        let info = ExperimentInfo::new(&fixture());
        let text = experiment(&info, now(), Style::PLAIN);
        let want = "\
Name:            ab
Namespace:       ns
Status:          ◌ Running
Message:         all good
Images:          app:v1 (Σ:baseline)
                 app:v2 (Σ:canary)

NAME                 KIND         STATUS     AGE  INFO
Σ ab                 Experiment   ◌ Running  10m
├──⧉ ab-baseline     ReplicaSet   ✔ Healthy  9m
├──⧉ ab-canary       ReplicaSet   ✔ Healthy  9m
│  └──□ ab-canary-x  Pod          ✔ Running  8m   ready:1/1
└──α ab-errors       AnalysisRun  ◌ Running  5m   ✔ 2
";
        pretty_assertions::assert_eq!(text, want);
    }

    #[test]
    fn list_experiments_columns() {
        let ex = fixture().experiment;
        let line = ExperimentListLine::new(&ex, now());
        assert_eq!((line.duration, line.remaining), (Some(3600), Some(3300)));
        let text = list_experiments(std::slice::from_ref(&line), true, now());
        assert_eq!(
            text,
            "NAMESPACE  NAME        STATUS   DURATION  REMAINING  AGE\n\
             ns         ab          Running  60m       55m        10m\n"
        );
        // Completed: no time remaining.
        let mut done = ex.clone();
        done.status.as_mut().unwrap().phase = Some("Successful".into());
        let line = ExperimentListLine::new(&done, now());
        assert_eq!(line.remaining, None);
        let text = list_experiments(&[line], false, now());
        assert!(
            text.ends_with("ab          Successful  60m       -          10m\n"),
            "{text}"
        );
    }

    #[test]
    fn get_rollout_shows_its_experiments_under_their_revision() {
        let mut m = fixture();
        let ro: crate::api::Rollout = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "r", "namespace": "ns", "uid": "ro1",
                         "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"replicas": 1, "strategy": {"canary": {"steps": [{"experiment": {"templates": []}}]}}},
            "status": {"currentStepIndex": 0}
        }))
        .unwrap();
        let meta = &mut m.experiment.metadata;
        meta.annotations =
            Some([("rollout.argoproj.io/revision".to_string(), "2".to_string())].into());
        meta.owner_references = Some(vec![
            serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "r", "uid": "ro1",
            "controller": true}))
            .unwrap(),
        ]);
        let info = crate::cli::info::RolloutInfo::new(&Model {
            rollout: ro,
            replica_sets: m.replica_sets.clone(),
            pods: m.pods.clone(),
            analysis_runs: m.analysis_runs.clone(),
            experiments: vec![m.experiment.clone()],
        });
        assert_eq!(info.experiments.len(), 1);
        let text = tree(&info, now(), Style::PLAIN);
        assert!(
            text.contains("└──# revision:2\n")
                && text.contains("   └──Σ ab                 Experiment")
                && text.contains("      ├──⧉ ab-baseline     ReplicaSet"),
            "{text}"
        );
        // The experiment's images, with their template tags.
        assert_eq!(
            info.images
                .iter()
                .map(|i| format!("{} {:?}", i.image, i.tags))
                .collect::<Vec<_>>(),
            ["app:v1 [\"Σ:baseline\"]", "app:v2 [\"Σ:canary\"]"]
        );
    }
}
