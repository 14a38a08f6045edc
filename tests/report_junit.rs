//! JUnit XML: validated against the Jenkins xunit JUnit schema (lxml, from the venv the tests
//! provision), and read back with an XML parser to check that hostile evidence survives intact
//! and breaks nothing.

#[path = "common/provision.rs"]
mod provision;

use provision::assert_valid_junit;

use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};
use wsaudit::report::sample::{HOSTILE_TEXT, hostile_report};
use wsaudit::report::text::printable;
use wsaudit::report::{Verdict, junit};

/// One `<testcase>` read back: its attributes, the child element naming its outcome and the
/// text inside it.
#[derive(Debug, Default)]
struct ReadCase {
    name: String,
    classname: String,
    outcome: Option<String>,
    message: String,
    body: String,
    system_out: String,
}

fn read_cases(xml: &str) -> Vec<ReadCase> {
    let mut reader = Reader::from_str(xml);
    let mut cases = Vec::new();
    let mut current: Option<ReadCase> = None;
    let mut in_system_out = false;
    loop {
        let event = reader.read_event().expect("well-formed XML");
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let attr = |key: &str| {
                    e.attributes()
                        .filter_map(Result::ok)
                        .find(|a| a.key.as_ref() == key.as_bytes())
                        .map(|a| {
                            a.normalized_value(XmlVersion::Implicit1_0)
                                .expect("attribute")
                                .into_owned()
                        })
                        .unwrap_or_default()
                };
                match name.as_str() {
                    "testcase" => {
                        let case = ReadCase {
                            name: attr("name"),
                            classname: attr("classname"),
                            ..ReadCase::default()
                        };
                        if matches!(event, Event::Empty(_)) {
                            cases.push(case);
                        } else {
                            current = Some(case);
                        }
                    }
                    "failure" | "error" | "skipped" => {
                        if let Some(case) = current.as_mut() {
                            case.outcome = Some(name.clone());
                            case.message = attr("message");
                        }
                    }
                    "system-out" => in_system_out = true,
                    _ => {}
                }
            }
            Event::CData(ref t) => {
                if let Some(case) = current.as_mut() {
                    let text = String::from_utf8_lossy(t.as_ref()).into_owned();
                    if in_system_out {
                        case.system_out.push_str(&text);
                    } else {
                        case.body.push_str(&text);
                    }
                }
            }
            Event::End(ref e) => match e.name().as_ref() {
                b"testcase" => cases.extend(current.take()),
                b"system-out" => in_system_out = false,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    cases
}

#[test]
fn every_verdict_and_hostile_evidence_validate_against_the_junit_schema() {
    let xml = junit::render(&hostile_report().redact(str::to_string));
    assert_valid_junit(&xml);
}

#[test]
fn a_report_without_cases_validates() {
    let mut report = hostile_report();
    report.cases.clear();
    report.finish();
    assert_valid_junit(&junit::render(&report.redact(str::to_string)));
}

#[test]
fn verdicts_map_to_junit_elements_and_hostile_text_reads_back_intact() {
    let report = hostile_report().redact(str::to_string);
    let xml = junit::render(&report);
    let cases = read_cases(&xml);
    assert_eq!(cases.len(), report.cases.len() + report.not_run.len());
    // The sample's not-run case names no control of the report: it gets a suite of its own.
    let suites = xml.matches("<testsuite ").count();
    assert_eq!(suites, report.controls.len() + 1);
    for id in &report.not_run {
        let read = cases.iter().find(|c| c.name == *id).expect("not-run case");
        assert_eq!(read.outcome.as_deref(), Some("skipped"), "{id}");
        assert_eq!(read.message, junit::NOT_RUN, "{id}");
    }
    for (read, case) in cases.iter().zip(&report.cases) {
        assert_eq!(read.name, case.case_id);
        assert_eq!(read.classname, case.control_id);
        let expected = match case.verdict {
            Verdict::Pass => None,
            Verdict::Fail => Some("failure"),
            Verdict::Error => Some("error"),
            Verdict::Skipped | Verdict::Waived => Some("skipped"),
        };
        assert_eq!(read.outcome.as_deref(), expected, "{}", case.case_id);
        if expected.is_some() {
            assert_eq!(read.message, printable(&case.reason), "{}", case.case_id);
        }
        match case.verdict {
            Verdict::Fail | Verdict::Error => {
                assert_eq!(read.body, printable(&case.evidence.transcript.join("\n")))
            }
            _ => assert_eq!(
                read.system_out,
                printable(&case.evidence.transcript.join("\n"))
            ),
        }
    }
    // The hostile reply, with `]]>` and closing tags, is in the failure body word for word
    // (only the characters XML cannot carry are shown as escapes).
    let failed = cases
        .iter()
        .find(|c| c.name == "origin.suffix-confusion")
        .expect("failed case");
    assert!(failed.body.contains(&*printable(HOSTILE_TEXT)));
    assert!(failed.body.contains("]]> </failure></testcase>"));
    assert!(failed.message.contains("\"dq\" 'sq'"));
    // The waived case says why and until when.
    let waived = cases
        .iter()
        .find(|c| c.name == "heartbeat.stale-connection")
        .expect("waived case");
    assert!(
        waived.message.contains("tracked in SEC-42"),
        "{}",
        waived.message
    );
    assert!(
        waived.message.contains("expires 2099-12-31"),
        "{}",
        waived.message
    );
    assert!(xml.contains("type=\"waived\""));
}

#[test]
fn case_names_are_unique_within_a_control() {
    let mut report = hostile_report();
    let duplicate = report.cases[0].clone();
    report.cases.push(duplicate);
    report.finish();
    let xml = junit::render(&report.redact(str::to_string));
    assert_valid_junit(&xml);
    let names: Vec<String> = read_cases(&xml)
        .into_iter()
        .filter(|c| c.classname == "WS-TLS-01")
        .map(|c| c.name)
        .collect();
    assert_eq!(
        names,
        [
            "transport.plaintext-upgrade",
            "transport.tls-version",
            "transport.plaintext-upgrade #2"
        ]
    );
}

#[test]
fn cases_of_unknown_controls_still_get_a_suite() {
    let mut report = hostile_report();
    let mut orphan = report.cases[3].clone();
    orphan.control_id = "WS-GONE-01".into();
    report.cases.push(orphan);
    report.finish();
    let xml = junit::render(&report.redact(str::to_string));
    assert_valid_junit(&xml);
    assert!(xml.contains("name=\"WS-GONE-01: (not in the policy)\""));
    assert_eq!(
        read_cases(&xml).len(),
        report.cases.len() + report.not_run.len()
    );
}

#[test]
fn cases_not_run_are_skipped_under_their_control() {
    let mut report = hostile_report();
    report.not_run = vec!["WS-TLS-01/TLS-NEGOTIATED".into()];
    let xml = junit::render(&report.redact(str::to_string));
    assert_valid_junit(&xml);
    let read = read_cases(&xml);
    let case = read
        .iter()
        .find(|c| c.name == "WS-TLS-01/TLS-NEGOTIATED")
        .expect("not-run case listed");
    assert_eq!(case.classname, "WS-TLS-01");
    assert_eq!(case.outcome.as_deref(), Some("skipped"));
    assert_eq!(case.message, "not run: interrupted");
    assert_eq!(
        xml.matches("<testsuite ").count(),
        report.controls.len(),
        "no extra suite for a case of a known control"
    );
}

#[test]
fn timestamps_come_from_the_run_not_the_clock() {
    let report = hostile_report().redact(str::to_string);
    let xml = junit::render(&report);
    assert_eq!(xml, junit::render(&report), "rendering is deterministic");
    assert!(xml.contains("timestamp=\"2025-01-02T03:04:05Z\""), "{xml}");
    // The origin suite starts with its first case, 150 ms into the run.
    assert!(
        xml.contains("timestamp=\"2025-01-02T03:04:05.15Z\""),
        "{xml}"
    );
}
