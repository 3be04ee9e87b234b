//! How the streams of each file layout are found and run: a bare pickle, a zip (torch, NumPy
//! or TorchScript), the legacy `torch.save` sequence, the torch < 0.4 tar, and `.npy` object
//! arrays.
//!
//! Owns: walking a layout. Must not import: `hidden` (it is reached through the runner).

use super::*;

impl Runner<'_> {
    /// Raw pickle streams, one after another until the bytes end.
    pub(super) fn raw(&mut self, bytes: &[u8]) {
        let mut at = 0usize;
        for index in 0.. {
            let stream = Stream {
                member: None,
                bytes: Cow::Borrowed(bytes),
                start: at,
                base_offset: 0,
                role: if index == 0 {
                    Role::Object
                } else {
                    Role::Concatenated
                },
                persistent: PersistentKind::None,
            };
            let program = self.run(&stream);
            let failed = program.error.is_some();
            let end = usize::try_from(program.end).unwrap_or(bytes.len());
            if index == 0 {
                self.analysis.object = Some(program);
            }
            if failed {
                if index > 0 {
                    // Junk that merely starts like a pickle may hide a real one further on.
                    self.hidden_streams(bytes, at + 1, None);
                }
                return;
            }
            at = end;
            let rest = bytes.get(at..).unwrap_or(&[]);
            if rest.iter().all(u8::is_ascii_whitespace) {
                return;
            }
            if !container::looks_like_pickle(rest) {
                self.finding(
                    Finding::new(
                        Risk::Info,
                        None,
                        format!(
                            "{} bytes follow the last pickle and are not a pickle (searched for hidden streams)",
                            rest.len()
                        ),
                    )
                    .at(None, at as u64, None),
                );
                self.hidden_streams(bytes, at, None);
                return;
            }
            if index == 0 {
                self.finding(
                    Finding::new(
                        Risk::Info,
                        None,
                        "more pickles follow the first one: `pickle.load` reads one, joblib-style loaders read them all; all are scanned",
                    )
                    .at(None, at as u64, None),
                );
            }
        }
    }

    pub(super) fn zip(&mut self, bytes: &[u8], format: Format) {
        let archive = match container::torch_zip(bytes) {
            Ok(z) => z,
            Err(e) => {
                self.finding(Finding::new(
                    Risk::Suspicious,
                    None,
                    format!("the zip archive cannot be read ({e}); nothing in it was scanned"),
                ));
                return;
            }
        };
        self.findings.extend(archive.findings.iter().cloned());
        let data_pkl = archive.data_pkl;
        let mut referenced: Vec<String> = Vec::new();
        if let Some(entry) = data_pkl.and_then(|i| archive.entries.get(i)) {
            // `None`: the inflate budget is spent and the analysis already says so.
            match self.member(bytes, entry) {
                Some(Ok(b)) => {
                    let stream = Stream {
                        member: Some(entry.name.clone()),
                        bytes: b,
                        start: 0,
                        base_offset: 0,
                        role: Role::Object,
                        persistent: PersistentKind::Storage,
                    };
                    let program = self.run(&stream);
                    referenced = torch::storage_keys(&program.arena);
                    let end = usize::try_from(program.end).unwrap_or(usize::MAX);
                    if program.error.is_none() && end < stream.bytes.len() {
                        self.hidden_streams(&stream.bytes, end, Some(&entry.name));
                    }
                    self.analysis.object = Some(program);
                }
                Some(Err(e)) => self.finding(Finding::new(Risk::Suspicious, None, e)),
                None => {}
            }
        } else if matches!(format, Format::PytorchZip | Format::Torchscript) {
            self.finding(Finding::new(
                Risk::Suspicious,
                None,
                "no data.pkl in the archive: torch.load would fail, and there is no pickle to judge",
            ));
        }
        // Every other member that parses as a pickle is scanned too, whatever its name.
        let referenced: HashSet<u64> = referenced
            .iter()
            .filter_map(|k| archive.record(k))
            .map(|r| r.local_header_offset)
            .collect();
        for (i, entry) in archive.entries.iter().enumerate() {
            if self.analysis.stopped.is_some() {
                break;
            }
            if Some(i) == data_pkl
                || entry.name.ends_with('/')
                || referenced.contains(&entry.local_header_offset)
                || (archive.torchscript && torchscript::is_source(&entry.name))
            {
                continue;
            }
            // A compressed array of numbers holds no pickle: its header says so, and np.load
            // reads it without unpickling (inflating it here would cost its whole size).
            if format == Format::NumpyZip && container::is_deflated_numeric_npy(bytes, entry) {
                continue;
            }
            // One read (and inflate) of the member serves both checks.
            let b = match self.member(bytes, entry) {
                None => break,
                Some(Ok(b)) => b,
                Some(Err(e)) => {
                    self.finding(Finding::new(
                        Risk::Suspicious,
                        None,
                        format!("{e}; the member was not scanned"),
                    ));
                    continue;
                }
            };
            if (format == Format::NumpyZip || entry.name.to_ascii_lowercase().ends_with(".npy"))
                && b.starts_with(b"\x93NUMPY")
            {
                self.npy(&b, Some(entry.name.clone()), 0);
                continue;
            }
            if !container::looks_like_pickle(&b) {
                continue;
            }
            let stream = Stream {
                member: Some(entry.name.clone()),
                bytes: b,
                start: 0,
                base_offset: 0,
                role: Role::Extra,
                persistent: PersistentKind::Storage,
            };
            let program = self.run(&stream);
            // Random bytes that happen to start like a pickle fail at once; only report members
            // that really are pickles.
            if program.error.is_some()
                && program.events == 0
                && program.ops < 8
                && self.analysis.stopped.is_none()
            {
                self.analysis.streams.pop();
                self.findings.forget_member(&entry.name);
                continue;
            }
            let lower = entry.name.to_ascii_lowercase();
            let expected = lower.ends_with("constants.pkl")
                || (archive.torchscript && torchscript::is_read_pickle(&lower));
            if !expected {
                self.finding(Finding::new(
                    Risk::Info,
                    None,
                    format!(
                        "member `{}` is a pickle that torch.load does not read; other tools might",
                        entry.name
                    ),
                ));
            }
        }
        if archive.torchscript {
            self.torchscript_code(bytes, &archive);
        }
        self.analysis.zip = Some(archive);
    }

    pub(super) fn legacy(&mut self, bytes: &[u8]) {
        let mut at = 0usize;
        let mut little_endian = true;
        let roles = [
            Role::Header,
            Role::Header,
            Role::Header,
            Role::Object,
            Role::Records,
        ];
        for (i, role) in roles.into_iter().enumerate() {
            let stream = Stream {
                member: None,
                bytes: Cow::Borrowed(bytes),
                start: at,
                base_offset: 0,
                role,
                persistent: if role == Role::Object {
                    PersistentKind::Storage
                } else {
                    PersistentKind::None
                },
            };
            let program = self.run(&stream);
            if program.error.is_some() {
                if role == Role::Object {
                    self.analysis.object = Some(program);
                }
                return;
            }
            at = usize::try_from(program.end).unwrap_or(bytes.len());
            if i == 2
                && let Some(root) = program.root
            {
                little_endian = torch::sys_info_little_endian(&program.arena, root).unwrap_or(true);
            }
            if role == Role::Object {
                self.analysis.object = Some(program);
            } else if role == Role::Records {
                self.analysis.legacy_keys = Some(program);
            }
        }
        self.analysis.legacy = Some(LegacyLayout {
            storages_start: at as u64,
            little_endian,
        });
    }

    pub(super) fn tar(&mut self, bytes: &[u8]) {
        let mut layout = tar::TarLayout::default();
        let members = crate::archive::tar::members(bytes);
        for name in ["sys_info", "pickle", "storages", "tensors"] {
            if !members.iter().any(|m| m.name == name) {
                self.finding(Finding::new(
                    Risk::Info,
                    None,
                    format!("the tar archive has no `{name}` member"),
                ));
            }
        }
        for m in &members {
            let Some(data) = bytes.get(m.data.start as usize..m.data.end as usize) else {
                continue;
            };
            let emit =
                |runner: &mut Runner<'_>, start: usize, role: Role, persistent: PersistentKind| {
                    let stream = Stream {
                        member: Some(m.name.clone()),
                        bytes: Cow::Borrowed(data),
                        start,
                        base_offset: 0,
                        role,
                        persistent,
                    };
                    runner.run(&stream)
                };
            match m.name.as_str() {
                "pickle" => {
                    let program = emit(self, 0, Role::Object, PersistentKind::Key);
                    self.analysis.object = Some(program);
                }
                "storages" => {
                    tar::read_storages(data, m.data.start, &mut layout, &mut |start| {
                        emit(self, start, Role::Records, PersistentKind::None)
                    });
                }
                "tensors" => {
                    tar::read_tensors(data, &mut layout, &mut |start| {
                        emit(self, start, Role::Records, PersistentKind::None)
                    });
                }
                "sys_info" => {
                    emit(self, 0, Role::Header, PersistentKind::None);
                }
                _ => {
                    if container::looks_like_pickle(data) {
                        emit(self, 0, Role::Extra, PersistentKind::None);
                    }
                }
            }
        }
        self.findings.extend(
            layout
                .problems
                .iter()
                .map(|p| Finding::new(Risk::Info, None, p.clone())),
        );
        self.analysis.tar = Some(layout);
    }

    pub(super) fn npy(&mut self, bytes: &[u8], member: Option<String>, base: u64) {
        match container::npy_header(bytes) {
            Ok(header) => {
                if header.is_object() {
                    self.finding(Finding::new(
                        Risk::Info,
                        None,
                        format!(
                            "object array{}: its data is a pickle, loaded only with allow_pickle=True",
                            member.as_deref().map(|m| format!(" `{m}`")).unwrap_or_default()
                        ),
                    ));
                    let stream = Stream {
                        member: member.clone(),
                        bytes: Cow::Owned(bytes.to_vec()),
                        start: header.data_start,
                        base_offset: base,
                        role: Role::NumpyObject,
                        persistent: PersistentKind::None,
                    };
                    let program = self.run(&stream);
                    if member.is_none() {
                        self.analysis.object = Some(program);
                    }
                }
                if member.is_none() {
                    self.analysis.npy = Some(header);
                }
            }
            Err(e) => self.finding(Finding::new(Risk::Info, None, e)),
        }
    }
}
