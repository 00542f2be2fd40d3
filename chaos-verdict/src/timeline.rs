//! The timeline file a runbook writes while it runs (format in docs/runbooks.md), and
//! the phases, fault windows, marks and abort it describes.
//!
//! One event per line, fields separated by one tab (spaces above), appended as things
//! happen, so a run killed half way still leaves a readable file:
//!
//! ```text
//! chaos-verdict-timeline    1
//! phase-start    baseline    2026-11-28T07:00:00.000Z
//! phase-end    baseline    2026-11-28T07:01:00.000Z
//! fault-start    kill    2026-11-28T07:01:00.100Z
//! fault-report    kill    faults/kill.json
//! fault-end    kill    2026-11-28T07:01:31.000Z
//! cleanup    kill    2026-11-28T07:01:31.200Z    verified
//! mark    guard-trip    2026-11-28T07:01:20.000Z    error rate 34.1% over 10 s
//! abort    guard    2026-11-28T07:01:20.000Z    error rate 34.1% over 10 s
//! ```
//!
//! A fault's window comes from its tool report (`phases[apply].startedAt ..
//! phases[revert].endedAt`) when it has one, else from `fault-start` .. `fault-end`. A
//! phase or fault with no end is open: it ends where the data ends, and is flagged.

use std::path::{Path, PathBuf};

use crate::error::{Result, VerdictError};
use crate::time::{self, Millis};
use crate::tool_report::ToolReport;

const HEADER: &str = "chaos-verdict-timeline\t1";

#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: String,
    pub start: Millis,
    /// `None` while the phase was still running when the file was read.
    pub end: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub name: String,
    pub started: Option<Millis>,
    pub ended: Option<Millis>,
    /// The tool report, resolved relative to the timeline's directory.
    pub report_path: Option<PathBuf>,
    pub report: Option<std::result::Result<ToolReport, String>>,
    /// The runbook's verification after removal: `Ok(())` verified, `Err(why)`.
    pub cleanup: Option<std::result::Result<(), String>>,
}

impl Fault {
    /// Where the fault was in place: the report's window, else the runbook's marks.
    pub fn window(&self) -> (Option<Millis>, Option<Millis>) {
        let report = self.report.as_ref().and_then(|r| r.as_ref().ok());
        let start = report.and_then(|r| r.apply_started).or(self.started);
        let end = report.and_then(|r| r.revert_ended).or(self.ended);
        (start, end)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub kind: String,
    pub at: Millis,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Abort {
    /// `guard`, `guard-cmd`, `operator`, `error`.
    pub by: String,
    pub at: Millis,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    pub phases: Vec<Phase>,
    pub faults: Vec<Fault>,
    pub marks: Vec<Mark>,
    pub abort: Option<Abort>,
}

impl Timeline {
    pub fn read(path: &Path) -> Result<Timeline> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            VerdictError::bad(format!("cannot read the timeline {}: {e}", path.display()))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut timeline = Self::parse(&text)
            .map_err(|e| VerdictError::bad(format!("{}: {e}", path.display())))?;
        for fault in &mut timeline.faults {
            if let Some(rel) = &fault.report_path {
                let full = base.join(rel);
                fault.report = Some(ToolReport::read(&full).map_err(|e| e.to_string()));
                fault.report_path = Some(full);
            }
        }
        Ok(timeline)
    }

    /// Parses the text; tool reports are not read here.
    pub fn parse(text: &str) -> std::result::Result<Timeline, String> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
        match lines.next() {
            Some((_, l)) if l.trim_end() == HEADER => {}
            _ => {
                return Err(format!(
                    "the first line must be '{}'",
                    HEADER.replace('\t', "<TAB>")
                ));
            }
        }
        let mut t = Timeline::default();
        for (i, line) in lines {
            t.apply(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        }
        Ok(t)
    }

    fn apply(&mut self, line: &str) -> std::result::Result<(), String> {
        let f: Vec<&str> = line.split('\t').collect();
        let field = |i: usize, what: &str| {
            f.get(i)
                .copied()
                .filter(|s| !s.is_empty())
                .ok_or(format!("missing {what}"))
        };
        let name = field(1, "name")?.to_owned();
        let at = || field(2, "time").and_then(|t| time::parse(t).map_err(|e| e.to_string()));
        let rest = || f.get(3..).map(|r| r.join(" ")).unwrap_or_default();
        match f[0] {
            "phase-start" => self.phases.push(Phase {
                name,
                start: at()?,
                end: None,
            }),
            "phase-end" => {
                let end = at()?;
                let phase = self
                    .phases
                    .iter_mut()
                    .rev()
                    .find(|p| p.name == name && p.end.is_none());
                phase
                    .ok_or(format!("phase-end '{name}' without its phase-start"))?
                    .end = Some(end);
            }
            "fault-start" => self.fault(&name).started = Some(at()?),
            "fault-end" => self.fault(&name).ended = Some(at()?),
            "fault-report" => {
                self.fault(&name).report_path = Some(PathBuf::from(field(2, "report path")?))
            }
            "cleanup" => {
                at()?;
                let outcome = rest();
                self.fault(&name).cleanup = Some(if outcome == "verified" {
                    Ok(())
                } else {
                    Err(outcome)
                });
            }
            "mark" => self.marks.push(Mark {
                kind: name,
                at: at()?,
                text: rest(),
            }),
            "abort" => {
                // The first abort is the cause; later ones (Ctrl-C during a guard trip) are marks.
                let abort = Abort {
                    by: name,
                    at: at()?,
                    reason: rest(),
                };
                if self.abort.is_none() {
                    self.abort = Some(abort);
                } else {
                    self.marks.push(Mark {
                        kind: format!("abort-{}", abort.by),
                        at: abort.at,
                        text: abort.reason,
                    });
                }
            }
            other => return Err(format!("unknown event '{other}'")),
        }
        Ok(())
    }

    fn fault(&mut self, name: &str) -> &mut Fault {
        if let Some(i) = self.faults.iter().position(|f| f.name == name) {
            return &mut self.faults[i];
        }
        self.faults.push(Fault {
            name: name.to_owned(),
            started: None,
            ended: None,
            report_path: None,
            report: None,
            cleanup: None,
        });
        let last = self.faults.len() - 1;
        &mut self.faults[last]
    }

    /// The last phase of that name.
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().rev().find(|p| p.name == name)
    }

    /// From the first fault's start to the last fault's end (`None` when no fault started).
    pub fn fault_span(&self) -> Option<(Millis, Option<Millis>)> {
        let windows: Vec<_> = self
            .faults
            .iter()
            .map(Fault::window)
            .filter(|(s, _)| s.is_some())
            .collect();
        let start = windows.iter().filter_map(|(s, _)| *s).min()?;
        let end = if windows.iter().all(|(_, e)| e.is_some()) {
            windows.iter().filter_map(|(_, e)| *e).max()
        } else {
            None
        };
        Some((start, end))
    }

    pub fn mark(&self, kind: &str) -> Option<&Mark> {
        self.marks.iter().find(|m| m.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Millis {
        time::parse(s).unwrap()
    }

    const TEXT: &str = "chaos-verdict-timeline\t1\n\
        # written by scripts/runbooks/lib.sh\n\
        phase-start\tbaseline\t2026-11-28T07:00:00Z\n\
        phase-end\tbaseline\t2026-11-28T07:01:00Z\n\
        phase-start\tinjection\t2026-11-28T07:01:00Z\n\
        fault-start\tflip\t2026-11-28T07:01:00.500Z\n\
        fault-start\tslow\t2026-11-28T07:01:02Z\n\
        fault-end\tflip\t2026-11-28T07:01:30Z\n\
        cleanup\tflip\t2026-11-28T07:01:31Z\tverified\n\
        cleanup\tslow\t2026-11-28T07:01:31Z\tfailed: table still there\n\
        mark\tguard-trip\t2026-11-28T07:01:20Z\terror rate\t34%\n\
        abort\tguard\t2026-11-28T07:01:20Z\terror rate 34%\n\
        abort\toperator\t2026-11-28T07:01:21Z\tSIGINT\n";

    #[test]
    fn events_build_phases_faults_marks_and_the_first_abort() {
        let tl = Timeline::parse(TEXT).unwrap();
        assert_eq!(tl.phases.len(), 2);
        assert_eq!(
            tl.phase("baseline").unwrap().end,
            Some(t("2026-11-28T07:01:00Z"))
        );
        assert_eq!(tl.phase("injection").unwrap().end, None);
        assert_eq!(
            tl.faults[0].window(),
            (
                Some(t("2026-11-28T07:01:00.5Z")),
                Some(t("2026-11-28T07:01:30Z"))
            )
        );
        assert_eq!(tl.faults[0].cleanup, Some(Ok(())));
        assert_eq!(
            tl.faults[1].cleanup,
            Some(Err("failed: table still there".into()))
        );
        assert_eq!(tl.mark("guard-trip").unwrap().text, "error rate 34%");
        assert_eq!(tl.abort.as_ref().unwrap().by, "guard");
        assert!(tl.mark("abort-operator").is_some());
    }

    #[test]
    fn the_fault_span_is_open_while_any_fault_has_no_end() {
        let tl = Timeline::parse(TEXT).unwrap();
        assert_eq!(tl.fault_span(), Some((t("2026-11-28T07:01:00.5Z"), None)));
        let closed = format!("{TEXT}fault-end\tslow\t2026-11-28T07:01:40Z\n");
        let tl = Timeline::parse(&closed).unwrap();
        assert_eq!(
            tl.fault_span(),
            Some((t("2026-11-28T07:01:00.5Z"), Some(t("2026-11-28T07:01:40Z"))))
        );
    }

    #[test]
    fn malformed_lines_name_their_line_number() {
        let err =
            Timeline::parse("chaos-verdict-timeline\t1\nphase-start\tbaseline\n").unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("missing time"),
            "{err}"
        );
        let err =
            Timeline::parse("chaos-verdict-timeline\t1\nexplode\tnow\t2026-11-28T07:00:00Z\n")
                .unwrap_err();
        assert!(err.contains("unknown event 'explode'"), "{err}");
        let err = Timeline::parse("phase-start\tbaseline\t2026-11-28T07:00:00Z\n").unwrap_err();
        assert!(err.contains("first line"), "{err}");
        let err =
            Timeline::parse("chaos-verdict-timeline\t1\nphase-end\tx\t2026-11-28T07:00:00Z\n")
                .unwrap_err();
        assert!(err.contains("without its phase-start"), "{err}");
    }

    #[test]
    fn an_unreadable_report_is_kept_as_an_error_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timeline.tsv");
        std::fs::write(&path, "chaos-verdict-timeline\t1\nfault-start\tx\t2026-11-28T07:00:00Z\nfault-report\tx\tfaults/x.json\n").unwrap();
        let tl = Timeline::read(&path).unwrap();
        let report = tl.faults[0].report.as_ref().unwrap();
        assert!(report.as_ref().unwrap_err().contains("faults/x.json"));
        assert_eq!(
            tl.faults[0].window(),
            (Some(t("2026-11-28T07:00:00Z")), None)
        );
    }
}
