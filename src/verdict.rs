//! The words ckptscope judges files in, for every format: one scale for security and one for
//! reading, each with its own type, so that no reader invents a third.
//!
//! Two questions are asked of a file, and they are kept apart because their answers do not
//! follow from each other:
//!
//! - **Is it safe to load?** A [`Finding`] says what loading the file with its usual library
//!   would import, call or read, with a [`Risk`] (`info`, `suspicious`, `dangerous`); a file's
//!   [`Verdict`] (`safe`, `suspicious`, `dangerous`) is its worst finding. `scan` answers with
//!   these for every format (pickle streams, NumPy object arrays, GGUF chat templates, ONNX
//!   external data paths), and the package view and the window show the same ones.
//! - **Was all of it read?** A [`ReadIssue`] says what opening a file for its tensors could not
//!   read or found odd, with a [`Severity`] (`info`, `warning`, `error`): a missing shard, an
//!   ONNX initializer of a type ckptscope does not decode. It says nothing about safety: a
//!   checkpoint with an unreadable tensor may be perfectly safe, and a safe verdict does not
//!   promise that every tensor can be listed.
//!
//! When one fact answers both (an ONNX initializer whose external data path leaves the model's
//! folder is not read *and* is dangerous), the reader records its [`Risk`] once and derives the
//! reading severity from it with [`Severity::of_unread`], so the two scales cannot disagree.
//!
//! The JSON names are part of the CLI's output: a finding's risk is written as `severity`
//! (`"info"`, `"suspicious"`, `"dangerous"`), a read issue as `severity` (`"info"`,
//! `"warning"`, `"error"`) and `message`.
//!
//! Owns: [`Risk`], [`Verdict`], [`Finding`], [`Severity`], [`ReadIssue`]. Must not import:
//! anything (every reader and the pickle engine use it).

/// How risky a finding is. Ordered: a file's verdict is its worst finding.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Worth knowing; does not change the verdict.
    Info,
    /// Not allowlisted: loading would import or call something ckptscope cannot vouch for.
    Suspicious,
    /// Loading would run code, spawn a process, touch files or the network, or load more pickles.
    Dangerous,
}

/// A file's overall verdict.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Only allowlisted globals and operations.
    Safe,
    /// Something outside the allowlist.
    Suspicious,
    /// Something that runs code when loaded.
    Dangerous,
}

impl Verdict {
    /// The verdict of a set of findings.
    pub fn of<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Verdict {
        findings
            .into_iter()
            .map(|f| match f.risk {
                Risk::Info => Verdict::Safe,
                Risk::Suspicious => Verdict::Suspicious,
                Risk::Dangerous => Verdict::Dangerous,
            })
            .max()
            .unwrap_or(Verdict::Safe)
    }

    /// `safe`, `suspicious`, `dangerous`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Safe => "safe",
            Verdict::Suspicious => "suspicious",
            Verdict::Dangerous => "dangerous",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One thing the scan found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// How risky.
    #[serde(rename = "severity")]
    pub risk: Risk,
    /// The global involved, `module.name`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<String>,
    /// One line saying why it matters.
    pub reason: String,
    /// The archive member holding the pickle, for archives (the metadata key, for GGUF).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// Offset of the opcode in the pickle stream (in the member for archives, in the file
    /// otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The opcode (`REDUCE`, `GLOBAL`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opcode: Option<&'static str>,
    /// How many times the same finding occurred (first offset kept).
    #[serde(skip_serializing_if = "is_one")]
    pub count: u64,
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

impl Finding {
    /// A finding with no location yet.
    pub fn new(risk: Risk, global: Option<String>, reason: impl Into<String>) -> Finding {
        Finding {
            risk,
            global,
            reason: reason.into(),
            member: None,
            offset: None,
            opcode: None,
            count: 1,
        }
    }

    /// Sets where it was found: the member, the offset and the opcode's name
    /// (the pickle engine's `Op::name`).
    pub fn at(
        mut self,
        member: Option<&str>,
        offset: u64,
        opcode: Option<&'static str>,
    ) -> Finding {
        self.member = member.map(str::to_string);
        self.offset = Some(offset);
        self.opcode = opcode;
        self
    }
}

/// How much a read issue matters. Ordered from the least.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Something is off but the data is usable.
    Warning,
    /// Part of the checkpoint could not be read.
    Error,
}

impl Severity {
    /// The reading severity of a part that was not read because of something of `risk`: a part
    /// only of a kind ckptscope does not read (`info`) is a warning; a part not read because
    /// the file contradicts itself or points outside itself is an error.
    pub fn of_unread(risk: Risk) -> Severity {
        match risk {
            Risk::Info => Severity::Warning,
            Risk::Suspicious | Risk::Dangerous => Severity::Error,
        }
    }
}

/// A problem found while opening that did not stop the checkpoint from opening.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReadIssue {
    /// How much it matters.
    pub severity: Severity,
    /// What was found, in words.
    pub message: String,
}

impl ReadIssue {
    /// An issue of `severity`, said in `message`.
    pub fn new(severity: Severity, message: impl Into<String>) -> Self {
        ReadIssue {
            severity,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_is_the_worst_finding() {
        let info = Finding::new(Risk::Info, None, "note");
        let bad = Finding::new(Risk::Dangerous, Some("os.system".into()), "runs a command");
        assert_eq!(Verdict::of([&info]), Verdict::Safe);
        assert_eq!(Verdict::of([&info, &bad]), Verdict::Dangerous);
        assert_eq!(Verdict::of(std::iter::empty()), Verdict::Safe);
    }

    #[test]
    fn json_names_stay_what_the_cli_prints() {
        let f = Finding::new(Risk::Suspicious, None, "why").at(Some("data.pkl"), 7, Some("REDUCE"));
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            serde_json::json!({"severity": "suspicious", "reason": "why", "member": "data.pkl",
                               "offset": 7, "opcode": "REDUCE"})
        );
        let issue = ReadIssue::new(Severity::Warning, "shard missing");
        assert_eq!(
            serde_json::to_value(&issue).unwrap(),
            serde_json::json!({"severity": "warning", "message": "shard missing"})
        );
        assert_eq!(
            serde_json::to_value(Verdict::Dangerous).unwrap(),
            "dangerous"
        );
    }

    #[test]
    fn an_unread_part_is_an_error_when_it_is_a_risk() {
        assert_eq!(Severity::of_unread(Risk::Info), Severity::Warning);
        assert_eq!(Severity::of_unread(Risk::Suspicious), Severity::Error);
        assert_eq!(Severity::of_unread(Risk::Dangerous), Severity::Error);
    }
}
