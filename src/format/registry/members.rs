//! A zip that is not a torch, TorchScript, NumPy or Keras archive, judged by what it holds.

use std::path::Path;

use super::{first_bytes, identify, lookup, not_read};
use crate::archive::zip;
use crate::error::Error;
use crate::format::reader::{Input, Judgement, Reader};
use crate::format::{Checkpoint, Format, MappedFile, OpenOptions, readers};
use crate::pickle::StreamReport;
use crate::pickle::policy::{Finding, Risk};
use crate::progress::Progress;

/// Member names of plain data a zip may hold beside what ckptscope reads: text, configs, tables
/// and images (lower case).
const PLAIN_EXTENSIONS: [&str; 16] = [
    "json", "txt", "md", "rst", "yaml", "yml", "csv", "tsv", "toml", "png", "jpg", "jpeg", "gif",
    "bmp", "webp", "svg",
];
const PLAIN_NAMES: [&str; 5] = ["license", "readme", "notice", "copying", "authors"];

fn is_plain_member(lower: &str) -> bool {
    let base = lower.rsplit('/').next().unwrap_or(lower);
    PLAIN_NAMES.contains(&base)
        || base
            .rsplit_once('.')
            .is_some_and(|(_, ext)| PLAIN_EXTENSIONS.contains(&ext))
}

/// Whether a member named as plain data holds what its name says: an image starts with its
/// format's signature, anything else is text (UTF-8 without NUL bytes; the prefix may cut the
/// last character).
fn plain_content(lower: &str, prefix: &[u8]) -> bool {
    let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    match ext {
        "png" => prefix.starts_with(b"\x89PNG\r\n\x1a\n"),
        "jpg" | "jpeg" => prefix.starts_with(&[0xff, 0xd8, 0xff]),
        "gif" => prefix.starts_with(b"GIF87a") || prefix.starts_with(b"GIF89a"),
        "bmp" => prefix.starts_with(b"BM"),
        "webp" => prefix.starts_with(b"RIFF") && prefix.get(8..12) == Some(b"WEBP"),
        _ => {
            !prefix.contains(&0)
                && match std::str::from_utf8(prefix) {
                    Ok(_) => true,
                    // Only a character cut by the prefix's end is forgiven.
                    Err(e) => e.error_len().is_none(),
                }
        }
    }
}

/// Bytes of a member looked at to tell what it is.
const MEMBER_PREFIX: usize = 64 * 1024;

/// A zip that is not a torch, TorchScript, NumPy or Keras archive: judged by what it holds.
/// Pickles and arrays in it are run and judged (as in any archive); plain data is fine; every
/// other member is identified through the table: a format read is judged by its reader, a
/// format not read (or not known) makes the archive not scanned, naming the member.
pub struct ZipArchive;

impl ZipArchive {
    /// The findings of the members that are not pickles (the archive's pickle analysis ran
    /// them: `streams`), arrays or plain data, or why the archive cannot be judged.
    fn members(input: &Input<'_>, streams: &[StreamReport]) -> Result<Vec<Finding>, String> {
        // An archive whose directory cannot be read is judged by the pickle analysis, which
        // says so (suspicious, never safe); `scan` refuses it before any reader runs.
        let Ok(entries) = zip::entries(input.bytes) else {
            return Ok(Vec::new());
        };
        let mut findings = Vec::new();
        for entry in &entries {
            let lower = entry.name.to_ascii_lowercase();
            if lower.ends_with('/') {
                continue;
            }
            let member = |what: String| format!("member `{}` {what}", entry.name);
            let range = zip::data_range(input.bytes, entry).map_err(|p| member(p.to_string()))?;
            let raw = usize::try_from(range.start)
                .ok()
                .zip(usize::try_from(range.end).ok())
                .and_then(|(s, e)| input.bytes.get(s..e))
                .unwrap_or_default();
            let whole = |raw: &[u8]| -> Result<Vec<u8>, String> {
                match entry.method {
                    0 => Ok(raw.to_vec()),
                    8 if entry.size <= input.limits.max_inflated_bytes => {
                        let size = usize::try_from(entry.size).map_err(|e| e.to_string())?;
                        zip::inflate_exact(raw, size)
                    }
                    8 => Err(format!(
                        "inflates to {} bytes, more than the limit of {} (raise --limit inflated=N)",
                        entry.size, input.limits.max_inflated_bytes
                    )),
                    m => Err(format!(
                        "is compressed with method {m}, which ckptscope does not read"
                    )),
                }
            };
            let prefix = match entry.method {
                0 => raw.get(..MEMBER_PREFIX).unwrap_or(raw).to_vec(),
                8 => zip::inflate_prefix(raw, MEMBER_PREFIX).map_err(member)?,
                _ => whole(raw).map_err(member)?,
            };
            // Plain data by its name *and* its content: an HDF5 file or a pickle renamed
            // `notes.json` is judged as what it is.
            if is_plain_member(&lower) && plain_content(&lower, &prefix) {
                continue;
            }
            let name = Path::new(&entry.name);
            // A zip too large for the prefix to hold its directory is still a zip.
            let format = match identify(name, &prefix) {
                Format::Unknown if prefix.starts_with(b"PK\x03\x04") => Format::Zip,
                f => f,
            };
            // Pickles and `.npy` arrays were run with the archive's pickle analysis (which runs
            // whatever starts like a pickle: a member it ran that is some other format is still
            // judged as that format).
            let ran = streams
                .iter()
                .any(|s| s.member.as_deref() == Some(entry.name.as_str()));
            if matches!(format, Format::Pickle | Format::PytorchLegacy)
                || (format == Format::Unknown && ran)
                || (format == Format::Numpy && lower.ends_with(".npy"))
            {
                continue;
            }
            let e = lookup(format);
            let reader = match (format, e.reader) {
                (Format::Unknown, _) => {
                    return Err(member(format!(
                        "is not a format ckptscope reads (first bytes: {}), so the archive was not scanned and is not known to be safe",
                        first_bytes(&prefix)
                    )));
                }
                (Format::Zip, _) => {
                    return Err(member(
                        "is a zip inside the zip; ckptscope does not judge nested archives yet, so the archive was not scanned and is not known to be safe".into(),
                    ));
                }
                (_, Some(reader)) => reader,
                (_, None) => {
                    return Err(member(format!(
                        "is {}, so the archive is not known to be safe",
                        not_read(format)
                    )));
                }
            };
            let bytes = whole(raw).map_err(member)?;
            let judged = reader
                .judge(&Input {
                    bytes: &bytes,
                    file_len: bytes.len() as u64,
                    format,
                    ..*input
                })
                .map_err(member)?;
            findings.extend(judged.findings.into_iter().map(|mut f| {
                f.member.get_or_insert_with(|| entry.name.clone());
                f
            }));
        }
        Ok(findings)
    }
}

impl Reader for ZipArchive {
    fn open(
        &self,
        mapped: MappedFile,
        format: Format,
        options: &OpenOptions,
        progress: Option<&Progress>,
    ) -> Result<Checkpoint, Error> {
        let mut ckpt = readers::Pickled.open(mapped, format, options, progress)?;
        let members = {
            let streams = ckpt.pickle.as_ref().map(|r| r.streams.as_slice());
            let file = ckpt
                .sources
                .first()
                .ok_or_else(|| Error::Unsupported {
                    path: ckpt.path.clone(),
                    what: "a zip archive with no file to read".into(),
                })?
                .mapped()?;
            let input = Input {
                path: &ckpt.path,
                bytes: file.bytes(),
                file_len: file.len(),
                format,
                policy: &options.pickle.policy,
                limits: &options.limits,
            };
            Self::members(&input, streams.unwrap_or_default()).map_err(|what| {
                Error::Unsupported {
                    path: ckpt.path.clone(),
                    what,
                }
            })?
        };
        if let Some(report) = ckpt.pickle.as_mut() {
            report.findings.extend(members);
            report.findings.sort_by_key(|f| std::cmp::Reverse(f.risk));
            report.verdict = report
                .verdict
                .max(crate::pickle::policy::Verdict::of(&report.findings));
        }
        Ok(ckpt)
    }

    fn judge(&self, input: &Input<'_>) -> Result<Judgement, String> {
        let mut j = readers::Pickled.judge(input)?;
        let members = Self::members(input, &j.streams)?;
        j.findings.extend(members);
        j.findings.sort_by_key(|f| std::cmp::Reverse(f.risk));
        j.verdict = j
            .verdict
            .max(crate::pickle::policy::Verdict::of(&j.findings));
        if j.findings.is_empty() {
            j.findings.push(Finding::new(
                Risk::Info,
                None,
                "every member is plain data (text, configs, tables, images)",
            ));
        }
        Ok(j)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::detect;

    fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = crate::archive::zip_write::ZipWriter::new(Vec::new(), 1);
        for (name, bytes) in members {
            w.add(name, bytes).unwrap();
        }
        w.finish().unwrap().0
    }

    fn judge_zip(bytes: &[u8]) -> Result<Judgement, String> {
        let policy = crate::pickle::policy::Policy::default();
        let limits = crate::limits::Limits::default();
        ZipArchive.judge(&Input {
            path: Path::new("a.zip"),
            bytes,
            file_len: bytes.len() as u64,
            format: Format::Zip,
            policy: &policy,
            limits: &limits,
        })
    }

    #[test]
    fn plain_names_are_checked_against_the_content() {
        // HDF5 renamed `notes.json`: a format not read, whatever the name says.
        let h5 = zip_of(&[("notes.json", b"\x89HDF\r\n\x1a\n\0\0\0\0")]);
        let why = judge_zip(&h5).unwrap_err();
        assert!(why.contains("member `notes.json`"), "{why}");
        // Binary bytes named `.png` that are no PNG: not plain data.
        let png = zip_of(&[("logo.png", b"\x01\x02\x03\x04binary")]);
        assert!(judge_zip(&png).is_err());
        // Real text and a real PNG signature stay plain.
        let fine = zip_of(&[
            ("a.txt", "caf\u{e9}\n".as_bytes()),
            ("b.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
        ]);
        assert!(judge_zip(&fine).is_ok());
    }

    #[test]
    fn a_zip_is_judged_by_its_members() {
        use crate::pickle::policy::Verdict;
        let plain = zip_of(&[("README.md", b"# hi"), ("cfg/config.json", b"{}")]);
        assert_eq!(detect(&plain), Format::Zip);
        assert_eq!(judge_zip(&plain).unwrap().verdict, Verdict::Safe);
        let h5 = zip_of(&[
            ("config.json", b"{}"),
            ("w.h5", b"\x89HDF\r\n\x1a\n\0\0\0\0"),
        ]);
        let why = judge_zip(&h5).unwrap_err();
        assert!(
            why.contains("member `w.h5`") && why.contains("HDF5"),
            "{why}"
        );
        let unknown = zip_of(&[("blob.bin", b"\x01\x02\x03\x04")]);
        let why = judge_zip(&unknown).unwrap_err();
        assert!(
            why.contains("member `blob.bin`") && why.contains("not known to be safe"),
            "{why}"
        );
        let mut st = Vec::new();
        st.extend_from_slice(&2u64.to_le_bytes());
        st.extend_from_slice(b"{}");
        let safetensors = zip_of(&[("model.safetensors", &st)]);
        assert_eq!(judge_zip(&safetensors).unwrap().verdict, Verdict::Safe);
        let bad = zip_of(&[("model.safetensors", &st[..9])]);
        assert!(judge_zip(&bad).unwrap_err().contains("model.safetensors"));
        let evil = zip_of(&[("evil.pkl", b"cposix\nsystem\n(S'id'\ntR.")]);
        assert_eq!(judge_zip(&evil).unwrap().verdict, Verdict::Dangerous);
        let keras = zip_of(&[("config.json", b"{}"), ("metadata.json", b"{}")]);
        assert_eq!(detect(&keras), Format::Keras);
        assert_eq!(identify(Path::new("m.zip"), &keras), Format::Keras);
        let nested = zip_of(&[("inner.zip", &plain)]);
        assert!(judge_zip(&nested).unwrap_err().contains("inner.zip"));
        // `PK` starts like a pickle (PERSID): the pickle analysis runs it, and it is still a zip.
        let evil_inner = zip_of(&[("evil.pkl", b"cposix\nsystem\n(S'id'\ntR.")]);
        let nested = zip_of(&[("middle.bin", &evil_inner)]);
        let why = judge_zip(&nested).unwrap_err();
        assert!(
            why.contains("middle.bin") && why.contains("nested"),
            "{why}"
        );
    }
}
