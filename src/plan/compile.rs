//! The compiler: for every control of the policy, every case of every suite serving its check,
//! expanded per `for_each` item and filled from the policy, the target and derived values.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use super::derive::{origin_variants, schema_violations, url_params};
use super::expect::Expectation;
use super::step::Step;
use super::step::TicketTamper;
use super::template::{evaluate, fill, fill_string};
use super::{Case, CompileError, PLAN_FORMAT, Plan, PlanPolicy, Role};
use crate::config::deser::{At, Report};
use crate::config::policy::{
    CheckParams, Control, LegacyVersion, LoadedPolicy, Severity, SuiteClass, unknown_check_message,
};
use crate::config::source::{ConfigError, SourceFile};
use crate::config::suite::{LoadedSuite, SuiteSet};
use crate::config::target::{LoadedTarget, Target};
use crate::config::yaml_index::YamlPath;

/// The shipped policy whose parameters validate the shipped suites' placeholders.
const SAMPLE_POLICY: (&str, &str) = (
    "policies/fintech.yaml",
    include_str!("../../policies/fintech.yaml"),
);

/// A target with every optional part, used to validate suites without a real target.
const SAMPLE_TARGET: &str = r#"target: sample
url: wss://staging.example.com/ws
origin: https://app.example.com
auth:
  ticket:
    request:
      method: POST
      url: https://staging.example.com/ws/ticket
      headers: { Authorization: "Bearer sample-token" }
    extract: /ticket
  first_message: '{"type":"auth","ticket":"{{ticket}}"}'
  accepted_when: { json: { "/type": "auth_ok" } }
messages:
  valid: ['{"type":"payment","amount":12.5,"reference":"TX-123456","currency":"USD"}']
  accepted_when: { json: { "/type": "ack" } }
  rejected_when: { json: { "/type": "error" } }
"#;

/// The sample target suites are validated against (a full ticket flow and a valid message).
pub fn sample_target() -> Result<LoadedTarget, ConfigError> {
    LoadedTarget::parse(
        SourceFile::from_text("sample-target.yaml", SAMPLE_TARGET),
        &|_| None,
    )
}

/// Compiles policy x target x suites into a plan. Every problem of every file is reported.
pub fn compile(
    policy: &LoadedPolicy,
    target: &LoadedTarget,
    suites: &SuiteSet,
) -> Result<Plan, CompileError> {
    let mut suite_reports: Vec<Report<'_>> = suites
        .suites
        .iter()
        .map(|s| Report::new(&s.source, &s.index))
        .collect();
    let target_index = crate::config::yaml_index::YamlIndex::build(&target.source.text);
    let mut target_report = Report::new(&target.source, &target_index);
    let mut target_messages: BTreeSet<String> = BTreeSet::new();
    let mut cases = Vec::new();
    let mut ids: BTreeSet<String> = BTreeSet::new();
    let policy_index = crate::config::yaml_index::YamlIndex::build(&policy.source.text);
    let mut policy_report = Report::new(&policy.source, &policy_index);
    for (i, (control, params)) in policy
        .policy
        .controls
        .iter()
        .zip(&policy.params)
        .enumerate()
    {
        if suites.for_check(&control.check).next().is_none() {
            policy_report.error(
                &YamlPath::root().key("controls").index(i).key("check"),
                At::Value,
                unknown_check_message(control, &suites.checks()),
            );
            continue;
        }
        let ctx = context(control, params, &target.target);
        for (si, suite) in suites.suites.iter().enumerate() {
            if suite.suite.check != control.check {
                continue;
            }
            for ci in 0..suite.suite.cases.len() {
                if let Some(missing) = needs_missing_target_value(suite, ci, &target.target) {
                    let msg = format!(
                        "{missing}: control {} ({}) needs it for case {}",
                        control.id, control.check, suite.suite.cases[ci].id
                    );
                    if target_messages.insert(missing.to_string()) {
                        target_report.error(&YamlPath::root(), At::Value, msg);
                    }
                    continue;
                }
                let made = expand_case(
                    suite,
                    ci,
                    &ctx,
                    &CaseMeta {
                        control_id: &control.id,
                        severity: control.severity,
                        target: &target.target,
                    },
                    &mut suite_reports[si],
                );
                for case in made {
                    if ids.insert(case.case_id.clone()) {
                        cases.push(case);
                    } else {
                        suite_reports[si].error(
                            &LoadedSuite::case_path(ci).key("for_each"),
                            At::Value,
                            format!(
                                "case {}: expands to the id `{}` twice: expected distinct items",
                                suite.suite.cases[ci].id, case.case_id
                            ),
                        );
                    }
                }
            }
        }
    }
    let mut errors: Vec<ConfigError> = Vec::new();
    if !policy_report.is_empty() {
        errors.push(policy_report.into_error());
    }
    if !target_report.is_empty() {
        errors.push(target_report.into_error());
    }
    errors.extend(
        suite_reports
            .into_iter()
            .filter(|r| !r.is_empty())
            .map(Report::into_error),
    );
    if !errors.is_empty() {
        return Err(CompileError { errors });
    }
    Ok(Plan {
        plan: PLAN_FORMAT,
        policy: PlanPolicy {
            name: policy.policy.policy.clone(),
            file: policy.source.path.display().to_string(),
        },
        target: target.target.clone(),
        cases,
        secrets: target.secrets.clone(),
    })
}

/// A target value a case needs but the target lacks: a valid business message, needed by
/// cases that `login` (which waits for the target's acknowledgement flow) or send one.
fn needs_missing_target_value(
    suite: &LoadedSuite,
    ci: usize,
    target: &Target,
) -> Option<&'static str> {
    fn mentions(v: &Value, word: &str) -> bool {
        match v {
            Value::String(s) => s.contains(word),
            Value::Sequence(items) => items.iter().any(|i| mentions(i, word)),
            Value::Mapping(m) => m
                .iter()
                .any(|(k, v)| k.as_str() == Some(word) || mentions(v, word)),
            Value::Tagged(t) => mentions(&t.value, word),
            _ => false,
        }
    }
    let case = &suite.suite.cases[ci];
    let all = case.steps.iter().chain(&case.expect);
    let wants_message = all
        .clone()
        .any(|v| mentions(v, "target.valid_message") || mentions(v, "login"));
    (wants_message && target.valid_message().is_none())
        .then_some("messages.valid is missing: expected at least one valid business message")
}

/// What a case inherits from its control and target.
struct CaseMeta<'a> {
    control_id: &'a str,
    severity: Severity,
    target: &'a Target,
}

/// The placeholder context of one control: `policy`, `control`, `target`, `derived`.
fn context(control: &Control, params: &CheckParams, target: &Target) -> Value {
    let mut c = Mapping::new();
    c.insert("policy".into(), params.to_value());
    let mut ctl = Mapping::new();
    ctl.insert("id".into(), control.id.clone().into());
    ctl.insert("check".into(), control.check.clone().into());
    c.insert("control".into(), Value::Mapping(ctl));
    c.insert("target".into(), target_view(target));
    c.insert("derived".into(), Value::Mapping(derived(params, target)));
    Value::Mapping(c)
}

/// What suites may read of a target (no headers: they hold credentials).
fn target_view(t: &Target) -> Value {
    let mut m = Mapping::new();
    let s = |v: &str| Value::String(v.to_string());
    m.insert("name".into(), s(&t.target));
    m.insert("url".into(), s(t.url.as_str()));
    m.insert("plaintext_url".into(), s(t.plaintext_url().as_str()));
    m.insert(
        "origin".into(),
        t.origin.as_ref().map_or(Value::Null, |o| s(&o.to_string())),
    );
    m.insert(
        "valid_message".into(),
        t.valid_message().map_or(Value::Null, s),
    );
    m.insert(
        "valid_messages".into(),
        Value::Sequence(
            t.messages
                .iter()
                .flat_map(|x| x.valid.iter())
                .map(|v| s(v))
                .collect(),
        ),
    );
    let auth = t.auth.as_ref();
    m.insert("has_auth".into(), Value::Bool(auth.is_some()));
    m.insert(
        "has_ticket_flow".into(),
        Value::Bool(auth.is_some_and(|a| a.ticket.is_some())),
    );
    // Whether the legitimate client may hold a session cookie a cross-site page could ride
    // on (known for sure only at run time: the case is skipped when there is none).
    let cookies = t.connect.as_ref().is_some_and(|c| !c.cookies.is_empty());
    m.insert(
        "may_have_session_cookie".into(),
        Value::Bool(cookies || !t.setup.is_empty() || auth.is_some_and(|a| a.ticket.is_some())),
    );
    m.insert("dialect".into(), s(t.dialect.name().as_str()));
    Value::Mapping(m)
}

/// Lists derived from a control's parameters (see [`super::derive`]).
fn derived(params: &CheckParams, target: &Target) -> Mapping {
    let mut m = Mapping::new();
    match params {
        CheckParams::Origin(o) => {
            m.insert(
                "origin_variants".into(),
                Value::Mapping(origin_variants(&o.allowed)),
            );
        }
        CheckParams::Tls(t) => {
            let versions = LegacyVersion::below(t.min_version)
                .into_iter()
                .map(|v| item(&[("id", v.id()), ("version", v.number()), ("name", v.name())]))
                .collect();
            m.insert("tls_old_versions".into(), Value::Sequence(versions));
            let classes = t
                .forbidden_suites
                .iter()
                .map(|c| {
                    // Plan text says a little more than a verdict's `SuiteClass::name`.
                    let name = match c {
                        SuiteClass::Null => "NULL (no encryption)",
                        SuiteClass::Export => "EXPORT (40/56-bit)",
                        SuiteClass::Anonymous => "anonymous key exchange",
                        other => other.name(),
                    };
                    item(&[("id", c.slug()), ("name", name)])
                })
                .collect();
            m.insert("tls_weak_suites".into(), Value::Sequence(classes));
        }
        CheckParams::UrlTokens(u) => {
            let names = url_params(&u.params).into_iter().map(Value::from).collect();
            m.insert("url_params".into(), Value::Sequence(names));
        }
        CheckParams::Ticket(_) => {
            let kinds = TicketTamper::ALL
                .iter()
                .map(|t| Value::from(t.name()))
                .collect();
            m.insert("ticket_tampers".into(), Value::Sequence(kinds));
        }
        CheckParams::Schema(s) => {
            let base = target
                .valid_message()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or(serde_json::Value::Null);
            let list = schema_violations(&s.schema, &base)
                .into_iter()
                .map(|v| {
                    let mut item = Mapping::new();
                    item.insert("id".into(), v.id.into());
                    item.insert("description".into(), v.description.into());
                    item.insert("message".into(), v.message.into());
                    Value::Mapping(item)
                })
                .collect();
            m.insert("schema_violations".into(), Value::Sequence(list));
        }
        _ => {}
    }
    m
}

/// A `for_each` item of string fields.
fn item(fields: &[(&str, &str)]) -> Value {
    Value::Mapping(
        fields
            .iter()
            .map(|(k, v)| (Value::from(*k), Value::from(*v)))
            .collect(),
    )
}

/// Reads a step with the YAML map form of enums (`- connect: {...}`).
#[derive(Deserialize)]
#[serde(transparent)]
struct StepDe(#[serde(with = "serde_yaml::with::singleton_map_recursive")] Step);

/// Reads an expectation with the YAML map form of enums.
#[derive(Deserialize)]
#[serde(transparent)]
struct ExpectDe(#[serde(with = "serde_yaml::with::singleton_map_recursive")] Expectation);

/// Expands case `ci` of `suite` under `ctx`; errors go to `report` (the suite's file).
fn expand_case(
    suite: &LoadedSuite,
    ci: usize,
    ctx: &Value,
    meta: &CaseMeta<'_>,
    report: &mut Report<'_>,
) -> Vec<Case> {
    let case = &suite.suite.cases[ci];
    let path = LoadedSuite::case_path(ci);
    let label = format!("case {}: ", case.id);
    for (expr, wanted) in &case.when {
        match evaluate(expr, ctx) {
            Ok(v) if same(&v, wanted) => {}
            Ok(_) => return Vec::new(),
            Err((msg, _)) => {
                report.error(
                    &path.key("when").key(expr.clone()),
                    At::Key,
                    format!("{label}when: {msg}"),
                );
                return Vec::new();
            }
        }
    }
    let items: Vec<Option<Value>> = match &case.for_each {
        None => vec![None],
        Some(expr) => match evaluate(expr, ctx) {
            Ok(Value::Sequence(items)) => items.into_iter().map(Some).collect(),
            Ok(_) => {
                report.error(
                    &path.key("for_each"),
                    At::Value,
                    format!("{label}for_each: `{expr}` is not a list: expected a placeholder expression giving a list"),
                );
                return Vec::new();
            }
            Err((msg, _)) => {
                report.error(
                    &path.key("for_each"),
                    At::Value,
                    format!("{label}for_each: {msg}"),
                );
                return Vec::new();
            }
        },
    };
    let mut out = Vec::new();
    for (n, item) in items.into_iter().enumerate() {
        let mut ctx = ctx.clone();
        if let (Some(item), Value::Mapping(m)) = (&item, &mut ctx) {
            m.insert("item".into(), item.clone());
        }
        let before = report.len();
        let name = match fill_string(&case.name, &ctx) {
            Ok(Value::String(s)) => s,
            Ok(other) => serde_yaml::to_string(&other)
                .unwrap_or_default()
                .trim()
                .to_string(),
            Err((msg, _)) => {
                report.error(&path.key("name"), At::Value, format!("{label}name: {msg}"));
                String::new()
            }
        };
        let differs = match case.differs.as_deref().map(|d| fill_string(d, &ctx)) {
            None => None,
            Some(Ok(Value::String(s))) => Some(s),
            Some(Ok(other)) => Some(
                serde_yaml::to_string(&other)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            ),
            Some(Err((msg, _))) => {
                report.error(
                    &path.key("differs"),
                    At::Value,
                    format!("{label}differs: {msg}"),
                );
                None
            }
        };
        let steps: Vec<Step> =
            read_list::<StepDe>(&case.steps, "steps", &ctx, &path, &label, report)
                .into_iter()
                .map(|s| s.0)
                .collect();
        for (j, step) in steps.iter().enumerate() {
            for problem in step.problems() {
                report.error(
                    &path.key("steps").index(j),
                    At::Value,
                    format!("{label}steps[{j}]: {problem}"),
                );
            }
        }
        let expect: Vec<Expectation> =
            read_list::<ExpectDe>(&case.expect, "expect", &ctx, &path, &label, report)
                .into_iter()
                .map(|e| e.0)
                .collect();
        if expect.is_empty() && report.len() == before {
            report.error(
                &path.key("expect"),
                At::Value,
                format!("{label}expect: the list is empty: expected at least one expectation"),
            );
        }
        if report.len() != before {
            continue;
        }
        let limits = &meta.target.limits;
        let planned = super::planned_time(&steps, &expect);
        let connects: u32 = steps
            .iter()
            .map(|s| match s {
                Step::Login | Step::TlsProbe(_) | Step::TlsHello(_) => 1,
                s => s.handshakes(),
            })
            .sum();
        let ping_clock = super::ping_clock(&steps, &expect);
        // Room for every handshake plus the deliberate waits, at least the case timeout.
        let needed = planned
            .saturating_add(ping_clock)
            .saturating_add(limits.connect_timeout.saturating_mul(connects + 1));
        let deadline = case.deadline.unwrap_or(limits.case_timeout).max(needed);
        let suffix = match &item {
            None => String::new(),
            Some(item) => format!("[{}]", item_key(item, n)),
        };
        out.push(Case {
            case_id: format!("{}/{}{suffix}", meta.control_id, case.id),
            control_id: meta.control_id.to_string(),
            family: suite.suite.suite.clone(),
            check: suite.suite.check.clone(),
            role: case.role,
            severity: meta.severity,
            name,
            steps,
            expect,
            deadline,
            destructive: case.destructive,
            differs,
        });
    }
    out
}

/// Fills and types a list of step or expectation templates, recording located errors.
fn read_list<T: serde::de::DeserializeOwned>(
    templates: &[Value],
    key: &str,
    ctx: &Value,
    case_path: &YamlPath,
    label: &str,
    report: &mut Report<'_>,
) -> Vec<T> {
    let mut out = Vec::new();
    for (j, template) in templates.iter().enumerate() {
        let at = case_path.key(key).index(j);
        match fill(template, ctx) {
            Ok(filled) => {
                if let Some(v) = report.deserialize::<T>(&filled, &at, case_path, label) {
                    out.push(v);
                }
            }
            Err(e) => {
                let full = at.join(&e.path);
                let shown = full.strip_prefix(case_path);
                report.error(&full, At::Value, format!("{label}{shown}: {}", e.message));
            }
        }
    }
    out
}

/// Whether a `when` value matches (`true` and `"true"` alike).
fn same(a: &Value, b: &Value) -> bool {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    a == b || text(a) == text(b)
}

/// The readable, stable key of a `for_each` item: the item itself, its `id`, or its number.
fn item_key(item: &Value, n: usize) -> String {
    match item {
        Value::String(s) => s.clone(),
        Value::Number(x) => x.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Mapping(m) => match m.get("id") {
            Some(Value::String(s)) => s.clone(),
            _ => (n + 1).to_string(),
        },
        _ => (n + 1).to_string(),
    }
}

impl SuiteSet {
    /// Validates every case of the set by expanding it with example parameters (the shipped
    /// policy's for shipped checks, the suite's `example` otherwise) against a sample target,
    /// and checks each check that has attacks also has a positive control.
    pub fn validate(&self) -> Result<(), CompileError> {
        let sample_policy =
            LoadedPolicy::parse(SourceFile::from_text(SAMPLE_POLICY.0, SAMPLE_POLICY.1))
                .map_err(CompileError::from)?;
        let target = sample_target().map_err(CompileError::from)?;
        let mut errors = Vec::new();
        for suite in &self.suites {
            let mut report = Report::new(&suite.source, &suite.index);
            let check = suite.suite.check.as_str();
            let params = match sample_policy.find(check) {
                Some((_, p)) => p.clone(),
                None => CheckParams::Custom(
                    self.for_check(check)
                        .find_map(|s| s.suite.example.clone())
                        .unwrap_or(Value::Mapping(Mapping::new())),
                ),
            };
            let control = Control {
                id: "EXAMPLE".into(),
                title: None,
                check: check.to_string(),
                with: Value::Null,
                severity: Severity::default(),
                refs: Vec::new(),
            };
            let ctx = context(&control, &params, &target.target);
            let meta = CaseMeta {
                control_id: "EXAMPLE",
                severity: Severity::default(),
                target: &target.target,
            };
            for ci in 0..suite.suite.cases.len() {
                expand_case(suite, ci, &ctx, &meta, &mut report);
            }
            let first_of_check = self.for_check(check).next().map(|s| s.source.path.clone());
            let has_attack = self
                .for_check(check)
                .any(|s| s.suite.cases.iter().any(|c| c.role == Role::Attack));
            let has_positive = self
                .for_check(check)
                .any(|s| s.suite.cases.iter().any(|c| c.role == Role::Positive));
            if has_attack && !has_positive && first_of_check.as_ref() == Some(&suite.source.path) {
                report.error(
                    &YamlPath::root().key("cases"),
                    At::Key,
                    format!(
                        "check {check} has attacks but no positive control: expected a case with role: positive (the legitimate path works)"
                    ),
                );
            }
            if !report.is_empty() {
                errors.push(report.into_error());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CompileError { errors })
        }
    }
}
