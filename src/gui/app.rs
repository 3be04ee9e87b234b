//! The explorer window: what it holds, the command loop, and which screen is shown.
//!
//! Owns [`App`]: the persisted state, the open document (and the comparison, when one is
//! shown), the job registry, the error and notice, and the queue of [`Command`]s. Views, menus
//! and dialogs draw from this state and push commands in `ui`; eframe's `logic`, called
//! before each frame is drawn, drains them, does the work that touches files or starts jobs,
//! and routes the jobs' results, so drawing never waits on a file. Opening, scanning,
//! statistics, values, conversion, export, comparison and lineage all run as [`Job`]s, so the
//! window keeps repainting whatever the size of the file.
//!
//! This is the top layer: it imports every view; nothing in `gui` may import it.

use std::path::PathBuf;
use std::sync::Arc;

use crate::gui::command::Command;
use crate::gui::command::{PathPrompt, PathPurpose};
use crate::gui::compare::{CompareView, compare_ui};
use crate::gui::dialogs::{
    Confirm, Picked, SAVE_PYTORCH, SAVE_PYTORCH_INDEX, SAVE_SAFETENSORS, confirm_ui, open_dialog,
    path_prompt_ui, reveal, save_dialog,
};
use crate::gui::doc::Doc;
use crate::gui::folder_view::{FolderView, folder_ui};
use crate::gui::jobs::Slot;
use crate::gui::jobs::{Ended, Job, JobError, JobKind, JobStatus, Jobs, Opened};
use crate::gui::menu::{MenuFacts, menu_ui, shortcuts};
use crate::gui::messages::{Messages, messages_ui};
use crate::gui::notices::{
    Undoable, apply_theme, convert_notice, dropped_command, export_notice, exportable,
    open_options, set_parent_notice,
};
use crate::gui::state::{Persisted, RecentFile, check_recent};
use crate::gui::widgets::display_name;
use crate::pickle::policy::Verdict;

/// How the app starts.
#[derive(Clone, Debug, Default)]
pub struct StartupArgs {
    /// Files given on the command line: none (start screen), one (explore), two (compare).
    pub files: Vec<PathBuf>,
    /// Run jobs inline (tests), so a frame sees their results at once.
    pub sync_jobs: bool,
    /// With no file given and no recent file (a first run), open the demo at once.
    pub demo_on_first_run: bool,
    /// Where hashes are remembered (the window uses the user's cache; tests none).
    pub cache: crate::hash::CacheDir,
}

/// The explorer application.
pub struct App {
    /// What is persisted.
    pub state: Persisted,
    /// The open checkpoint.
    pub doc: Option<Doc>,
    /// The comparison, when one is shown.
    pub compare: Option<CompareView>,
    /// The open model folder. A file opened from it is shown over it; closing that file
    /// comes back to it.
    pub package: Option<FolderView>,
    /// Opening a folder as a package.
    pub open_folder: Slot<crate::gui::folder_view::FolderRead>,
    /// The last error, shown until dismissed.
    pub error: Option<String>,
    /// A short message: a job done or cancelled.
    pub notice: Option<String>,
    /// The long jobs (open, compare, convert, export, set-parent), each with its own progress and cancel.
    pub jobs: Jobs,
    commands: Vec<Command>,
    confirm: Option<Confirm>,
    /// What the last conversion or export wrote (the notice's Open and Undo).
    converted: Option<Undoable>,
    /// The window's own path field, when the system dialog could not be shown.
    prompt: Option<PathPrompt>,
    /// The file the running open job reads.
    opening: Option<PathBuf>,
    trust: Option<Verdict>,
    sync: bool,
    last_title: Option<String>,
    focus_filter: bool,
    /// The recent files as the start screen shows them, checked on disk when the list changes
    /// or the start screen comes back.
    recent: Vec<RecentFile>,
    start_shown: bool,
    cache: crate::hash::CacheDir,
}

/// Rounds of commands pushed by commands (a dialog's answer) handled in one frame; whatever is
/// left waits for the next one.
const MAX_DRAIN_ROUNDS: usize = 4;

impl App {
    /// Builds the app, restoring persisted state, and opens the files given.
    pub fn new(cc: &eframe::CreationContext<'_>, args: StartupArgs) -> App {
        let state: Persisted = cc
            .storage
            .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
            .unwrap_or_default();
        let mut app = App {
            state,
            doc: None,
            compare: None,
            package: None,
            open_folder: Slot::default(),
            error: None,
            notice: None,
            jobs: Jobs::default(),
            commands: Vec::new(),
            confirm: None,
            converted: None,
            prompt: None,
            opening: None,
            trust: None,
            sync: args.sync_jobs,
            last_title: None,
            focus_filter: false,
            recent: Vec::new(),
            start_shown: false,
            cache: args.cache.clone(),
        };
        apply_theme(&cc.egui_ctx, app.state.theme);
        match args.files.as_slice() {
            [] if args.demo_on_first_run && app.state.recent.is_empty() => {
                app.commands.push(Command::OpenDemo)
            }
            [] => {}
            [one] => app.commands.push(Command::Open(one.clone())),
            [a, b, ..] => app.commands.push(Command::Compare {
                a: a.clone(),
                b: b.clone(),
            }),
        }
        // Process the startup commands now, so the first frame already shows the work.
        app.drain(&cc.egui_ctx, None);
        app
    }

    /// Queues a command (tests use this in place of clicks on native dialogs).
    pub fn push(&mut self, c: Command) {
        self.commands.push(c);
    }

    /// How the last job of `kind` ended, whoever ran it: the app, the document, or the
    /// comparison shown (its statistics).
    pub fn ended(&self, kind: JobKind) -> Option<&Ended> {
        match kind {
            JobKind::Open
            | JobKind::Compare
            | JobKind::Convert
            | JobKind::Export
            | JobKind::SetParent => self.jobs.ended(kind),
            JobKind::Stats if self.compare.is_some() => {
                self.compare.as_ref().and_then(|c| c.ended(kind))
            }
            JobKind::Stats | JobKind::Heatmap | JobKind::Values | JobKind::Lineage => {
                self.doc.as_ref().and_then(|d| d.ended(kind))
            }
            JobKind::OpenFolder => self.open_folder.ended(),
            JobKind::ConvertAll | JobKind::Inference | JobKind::RunCompare | JobKind::Reread => {
                self.package.as_ref().and_then(|p| p.ended(kind))
            }
        }
    }

    /// Stops the running job of `kind`: the status of the one stopped, if one ran.
    fn cancel(&mut self, kind: JobKind) -> Option<JobStatus> {
        match kind {
            JobKind::Open
            | JobKind::Compare
            | JobKind::Convert
            | JobKind::Export
            | JobKind::SetParent => self.jobs.cancel(kind),
            JobKind::Stats if self.compare.is_some() => {
                self.compare.as_mut().and_then(|c| c.cancel(kind))
            }
            JobKind::Stats | JobKind::Heatmap | JobKind::Values | JobKind::Lineage => {
                self.doc.as_mut().and_then(|d| d.cancel(kind))
            }
            JobKind::OpenFolder => self.open_folder.cancel(),
            JobKind::ConvertAll | JobKind::Inference | JobKind::RunCompare | JobKind::Reread => {
                self.package.as_mut().and_then(|p| p.cancel(kind))
            }
        }
    }

    /// What follows a system dialog: the command for the path chosen, nothing when the user
    /// closed it, and the window's own path field when it could not be shown.
    fn after_dialog(&mut self, picked: Picked, purpose: PathPurpose, suggestion: String) {
        match picked {
            // The system's save dialog asked before it let a file be replaced.
            Picked::Path(path) => self.path_entered(purpose, path, true),
            Picked::Cancelled => {}
            Picked::Unavailable => {
                self.prompt = Some(PathPrompt {
                    purpose,
                    text: suggestion,
                })
            }
        }
    }

    /// The command a path chosen (in a dialog or typed) stands for. `asked`: the system dialog
    /// chose it, and asked before letting an existing file be replaced.
    fn path_entered(&mut self, purpose: PathPurpose, path: PathBuf, asked: bool) {
        let open = self.doc.as_ref().map(|d| d.ckpt.path.clone());
        let command = match (purpose, open) {
            (PathPurpose::Open, _) => Command::Open(path),
            (PathPurpose::Compare, Some(a)) => Command::Compare { a, b: path },
            (PathPurpose::ConvertTo, Some(source)) => Command::Convert {
                source,
                dest: path,
                accept: None,
            },
            (PathPurpose::ExportTo, Some(source)) => {
                let there = self.existing_outputs(&path);
                if !asked && !there.is_empty() {
                    // Typed in the window: nobody asked yet whether to replace them.
                    self.confirm = Some(Confirm::ReplaceExport {
                        source,
                        dest: path,
                        there,
                    });
                    return;
                }
                Command::Export {
                    source,
                    dest: path,
                    replace: asked,
                }
            }
            (PathPurpose::SetParent, Some(file)) => Command::SetParent { file, parent: path },
            (_, None) => return,
        };
        self.commands.push(command);
    }

    /// The files an export of the open document to `dest` would write that are already there.
    fn existing_outputs(&self, dest: &std::path::Path) -> Vec<PathBuf> {
        let Some(doc) = &self.doc else {
            return Vec::new();
        };
        crate::export::outputs(&doc.ckpt, dest, false)
            .into_iter()
            .filter(|p| p.exists())
            .collect()
    }

    fn start_open(&mut self, ctx: &egui::Context, path: PathBuf) {
        self.opening = Some(path.clone());
        let trust = self.trust;
        let job = Job::spawn(
            ctx,
            JobKind::Open,
            display_name(&path),
            self.sync,
            move |progress| {
                let ckpt = crate::format::open_with(&path, &open_options(trust, progress))?;
                Ok(Opened { path, ckpt })
            },
        );
        self.jobs.open.start(job);
        self.error = None;
    }

    fn start_open_folder(&mut self, ctx: &egui::Context, path: PathBuf) {
        self.open_folder
            .start(FolderView::open_job(ctx, path, self.sync));
        self.error = None;
    }

    /// The conversion settings the package actions use: as the command line's defaults
    /// (pickles judged anything but safe are refused), with the window's hash cache.
    fn package_convert_options(&self) -> crate::convert::ConvertOptions {
        crate::convert::ConvertOptions {
            cache: self.cache.clone(),
            ..Default::default()
        }
    }

    fn start_compare(&mut self, ctx: &egui::Context, a: PathBuf, b: PathBuf) {
        let trust = self.trust;
        let label = format!("{} and {}", display_name(&a), display_name(&b));
        let job = Job::spawn(ctx, JobKind::Compare, label, self.sync, move |progress| {
            let options = open_options(trust, progress);
            let ca = crate::format::open_with(&a, &options)?;
            let cb = crate::format::open_with(&b, &options)?;
            let compared = CompareView::diff(Arc::new(ca), Arc::new(cb), true, progress);
            if progress.is_cancelled() {
                return Err(JobError::Cancelled);
            }
            Ok(compared)
        });
        self.jobs.compare.start(job);
        self.error = None;
    }

    /// Compares the open pair again with other pairing rules (no file is reopened).
    fn start_repair(
        &mut self,
        ctx: &egui::Context,
        a: Arc<crate::format::Checkpoint>,
        b: Arc<crate::format::Checkpoint>,
        mapped: bool,
    ) {
        let label = format!("{} and {}", display_name(&a.path), display_name(&b.path));
        let job = Job::spawn(ctx, JobKind::Compare, label, self.sync, move |progress| {
            let compared = CompareView::diff(a, b, mapped, progress);
            if progress.is_cancelled() {
                return Err(JobError::Cancelled);
            }
            Ok(compared)
        });
        self.jobs.compare.start(job);
        self.error = None;
    }

    fn start_set_parent(&mut self, ctx: &egui::Context, file: PathBuf, parent: PathBuf) {
        if let Some(doc) = &self.doc
            && doc.ckpt.path == file
            && doc.ckpt.format != crate::Format::Safetensors
        {
            self.error = Some(
                "Set parent writes safetensors metadata; open a .safetensors file first.".into(),
            );
            return;
        }
        // Rewrites the header only; quick, but still off the UI thread.
        let cache = self.cache.clone();
        let job = Job::spawn(
            ctx,
            JobKind::SetParent,
            display_name(&file),
            self.sync,
            move |p| Ok(crate::lineage::set_parent(&file, &parent, &cache, p)?),
        );
        self.jobs.set_parent.start(job);
        self.notice = None;
        self.error = None;
    }

    fn start_convert(
        &mut self,
        ctx: &egui::Context,
        input: PathBuf,
        out: PathBuf,
        accept: Verdict,
    ) {
        let options = crate::convert::ConvertOptions {
            output: Some(out),
            // The save dialog already asked about replacing an existing file.
            force: true,
            accept: Some(accept),
            cache: self.cache.clone(),
            ..Default::default()
        };
        let job = Job::spawn(
            ctx,
            JobKind::Convert,
            display_name(&input),
            self.sync,
            move |progress| Ok(crate::convert::convert(&input, &options, progress)?),
        );
        self.jobs.convert.start(job);
        self.notice = None;
        self.error = None;
    }

    fn start_export(&mut self, ctx: &egui::Context, source: PathBuf, dest: PathBuf, replace: bool) {
        let options = crate::export::ExportOptions {
            output: Some(dest),
            force: replace,
            ..Default::default()
        };
        let job = Job::spawn(
            ctx,
            JobKind::Export,
            display_name(&source),
            self.sync,
            move |progress| match crate::export::export(&source, &options, progress) {
                Ok(report) => Ok(report),
                // The window's way to replace a file is its save dialog.
                Err(crate::export::ExportError::Write(crate::pipeline::WriteError::Exists(p))) => {
                    Err(JobError::Failed(format!(
                        "{} already exists; it is not replaced. Use “Export for PyTorch…” to choose another name or to replace it.",
                        p.display()
                    )))
                }
                Err(e) => Err(e.into()),
            },
        );
        self.jobs.export.start(job);
        self.notice = None;
        self.error = None;
    }

    /// Removes what a conversion or an export wrote (the notice's Undo).
    fn undo(&mut self, written: Undoable) {
        let (notice, error) = written.remove();
        self.notice = notice.or(self.notice.take());
        self.error = error.or(self.error.take());
    }

    /// Shows what a job that did not give a result means to the user. A job cancelled by the
    /// user was already said so when it was cancelled; one cancelled from inside says nothing.
    fn job_failed(&mut self, e: JobError) {
        match e {
            JobError::Cancelled => {}
            e => self.error = Some(e.to_string()),
        }
    }

    fn poll_jobs(&mut self, ctx: &egui::Context) {
        if let Some(result) = self.jobs.open.take() {
            match result {
                Ok(Opened { path, ckpt }) => {
                    self.opening = None;
                    self.state.remember(&path);
                    let mut doc = Doc::new(Arc::new(ckpt));
                    doc.lineage.cache = self.cache.clone();
                    self.doc = Some(doc);
                    self.compare = None;
                }
                Err(e) => self.job_failed(e),
            }
        }
        if let Some(result) = self.open_folder.take() {
            match result {
                Ok(read) => {
                    self.state.remember(&read.package.root);
                    self.package = Some(FolderView::new(read));
                    self.doc = None;
                    self.compare = None;
                }
                Err(e) => self.job_failed(e),
            }
        }
        if let Some(view) = &mut self.package {
            match view.update(ctx, self.sync) {
                Some(Ok(notice)) => {
                    self.notice = Some(notice);
                    self.converted = None;
                }
                Some(Err(e)) => self.error = Some(e),
                None => {}
            }
        }
        if let Some(result) = self.jobs.compare.take() {
            match result {
                Ok(compared) => {
                    self.state.remember(&compared.a.path);
                    self.state.remember(&compared.b.path);
                    self.compare = Some(CompareView::new(compared));
                }
                Err(e) => self.job_failed(e),
            }
        }
        if let Some(result) = self.jobs.convert.take() {
            match result {
                Ok(report) => {
                    self.notice = Some(convert_notice(&report));
                    self.converted = Some(Undoable {
                        also: report.written().into_iter().skip(1).collect(),
                        path: report.output,
                    });
                }
                Err(e) => self.job_failed(e),
            }
        }
        if let Some(result) = self.jobs.export.take() {
            match result {
                Ok(report) => {
                    self.notice = Some(export_notice(&report));
                    self.converted = Some(Undoable {
                        also: report.written().into_iter().skip(1).collect(),
                        path: report.output,
                    });
                }
                Err(e) => self.job_failed(e),
            }
        }
        if let Some(result) = self.jobs.set_parent.take() {
            match result {
                Ok(report) => {
                    self.notice = Some(set_parent_notice(&report));
                    self.converted = None;
                    // Reopen the file shown to show its new metadata (set_parent verified it).
                    if self.doc.as_ref().is_none_or(|d| d.ckpt.path == report.file) {
                        self.start_open(ctx, report.file);
                    }
                }
                Err(e) => self.job_failed(e),
            }
        }
        if let Some(doc) = &mut self.doc {
            doc.update(ctx, self.sync);
        }
        if let Some(view) = &mut self.compare {
            view.update(ctx, self.sync);
        }
    }

    fn busy(&self) -> bool {
        self.jobs.busy()
            || self.open_folder.running()
            || self.package.as_ref().is_some_and(FolderView::busy)
            || self.doc.as_ref().is_some_and(Doc::busy)
            || self.compare.as_ref().is_some_and(CompareView::busy)
    }

    /// Handles queued commands, and those they push (a dialog's answer) at once. `frame` is
    /// `None` before the first frame (no parent for dialogs then).
    fn drain(&mut self, ctx: &egui::Context, frame: Option<&eframe::Frame>) {
        for _ in 0..MAX_DRAIN_ROUNDS {
            let batch = std::mem::take(&mut self.commands);
            if batch.is_empty() {
                return;
            }
            for command in batch {
                self.handle(ctx, frame, command);
            }
            // What a command changed is drawn by this frame's `ui`; one more frame lets what
            // it started settle (a theme, a job's first result) without waiting for an input
            // event.
            ctx.request_repaint();
        }
    }

    fn handle(&mut self, ctx: &egui::Context, frame: Option<&eframe::Frame>, command: Command) {
        match command {
            Command::OpenDialog => {
                let picked = open_dialog("Open checkpoint", frame);
                self.after_dialog(picked, PathPurpose::Open, String::new());
            }
            Command::Open(path) if path.is_dir() => self.start_open_folder(ctx, path),
            Command::OpenFolderDialog => {
                let picked = crate::gui::dialogs::folder_dialog(frame);
                self.after_dialog(picked, PathPurpose::Open, String::new());
            }
            Command::BackToFolder => {
                self.doc = None;
                self.compare = None;
            }
            c @ (Command::ConvertAll | Command::MakeInference(_) | Command::CompareRun) => {
                let options = self.package_convert_options();
                if let Some(view) = &mut self.package {
                    view.handle(ctx, self.sync, c, options);
                    self.notice = None;
                }
            }
            Command::Open(path) => {
                self.trust = None;
                // A file whose open a newer one supersedes was still opened by the user: it is
                // remembered now (a cancelled open is not).
                if self.jobs.open.running()
                    && let Some(previous) = self.opening.take()
                {
                    self.state.remember(&previous);
                }
                self.start_open(ctx, path);
            }
            Command::OpenDemo => match crate::gui::demo::extract() {
                Ok(path) => self.start_open(ctx, path),
                Err(e) => self.error = Some(format!("cannot write the demo checkpoint: {e}")),
            },
            Command::CompareDialog => {
                if self.doc.is_some() {
                    let picked = open_dialog("Compare with…", frame);
                    self.after_dialog(picked, PathPurpose::Compare, String::new());
                }
            }
            Command::Compare { a, b } => self.start_compare(ctx, a, b),
            Command::Close => {
                // A file opened from a folder closes back to the folder; the folder itself
                // closes to the start screen.
                if self.doc.is_none() && self.compare.is_none() {
                    self.package = None;
                }
                self.doc = None;
                self.compare = None;
                self.notice = None;
            }
            Command::LeaveCompare => self.compare = None,
            Command::Repair { mapped } => {
                if let Some(v) = &self.compare {
                    let (a, b) = (v.a.clone(), v.b.clone());
                    self.start_repair(ctx, a, b, mapped);
                }
            }
            Command::ForgetRecent(path) => self.state.recent.retain(|p| p != &path),
            Command::Reveal(path) => {
                if let Err(e) = reveal(&path) {
                    self.error = Some(format!(
                        "cannot show {} in the file manager: {e}",
                        path.display()
                    ));
                }
            }
            Command::Rescan => {
                if let Some(doc) = &self.doc {
                    let path = doc.ckpt.path.clone();
                    self.start_open(ctx, path);
                }
            }
            Command::ShowWithheldTensors => {
                if let Some(doc) = &self.doc {
                    self.trust = Some(Verdict::Dangerous);
                    let path = doc.ckpt.path.clone();
                    self.start_open(ctx, path);
                }
            }
            Command::ConvertDialog => {
                if let Some(doc) = &self.doc {
                    let suggested = crate::convert::default_output(&doc.ckpt.path);
                    let picked = save_dialog(SAVE_SAFETENSORS, &suggested, frame);
                    let text = suggested.display().to_string();
                    self.after_dialog(picked, PathPurpose::ConvertTo, text);
                }
            }
            Command::ConvertHere => {
                if let Some(doc) = &self.doc {
                    let source = doc.ckpt.path.clone();
                    let dest = crate::convert::default_output(&source);
                    if dest.exists() {
                        self.error = Some(format!(
                            "{} already exists; it is not replaced. Use “Convert to…” to choose another name or to replace it.",
                            dest.display()
                        ));
                    } else {
                        self.commands.push(Command::Convert {
                            source,
                            dest,
                            accept: None,
                        });
                    }
                }
            }
            Command::UndoConvert(path) => {
                if let Some(written) = self.converted.take_if(|w| w.path == path) {
                    self.undo(written);
                }
            }
            Command::ExportDialog => {
                if let Some(doc) = &self.doc
                    && exportable(&doc.ckpt)
                {
                    let suggested = crate::export::default_output(&doc.ckpt.path, false);
                    let kind = if doc.ckpt.format == crate::Format::SafetensorsSharded {
                        SAVE_PYTORCH_INDEX
                    } else {
                        SAVE_PYTORCH
                    };
                    let picked = save_dialog(kind, &suggested, frame);
                    let text = suggested.display().to_string();
                    self.after_dialog(picked, PathPurpose::ExportTo, text);
                }
            }
            Command::ExportHere => {
                if let Some(doc) = &self.doc
                    && exportable(&doc.ckpt)
                {
                    let source = doc.ckpt.path.clone();
                    let dest = crate::export::default_output(&source, false);
                    let there: Vec<String> = self
                        .existing_outputs(&dest)
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect();
                    if there.is_empty() {
                        self.commands.push(Command::Export {
                            source,
                            dest,
                            replace: false,
                        });
                    } else {
                        self.error = Some(format!(
                            "{} already exists; it is not replaced. Use “Export for PyTorch…” to choose another name or to replace it.",
                            there.join(", ")
                        ));
                    }
                }
            }
            Command::Export {
                source,
                dest,
                replace,
            } => self.start_export(ctx, source, dest, replace),
            Command::AskPath(prompt) => self.prompt = Some(prompt),
            Command::DismissPath => self.prompt = None,
            Command::PathEntered(purpose, path) => {
                self.prompt = None;
                // A typed path replaces an export's files only once the window asked.
                self.path_entered(purpose, path, false);
            }
            Command::Convert {
                source,
                dest,
                accept,
            } => {
                let accept = match accept {
                    Some(v) => v,
                    None => {
                        let verdict = self
                            .doc
                            .as_ref()
                            .filter(|d| d.ckpt.path == source)
                            .and_then(|d| d.ckpt.pickle.as_ref())
                            .map_or(Verdict::Safe, |p| p.read_verdict());
                        // As on the command line: a TorchScript program's weights convert
                        // without a confirmation unless its code reaches the system.
                        if verdict != Verdict::Safe {
                            self.confirm = Some(Confirm::ConvertUnsafe {
                                source,
                                dest,
                                verdict,
                            });
                            return;
                        }
                        Verdict::Safe
                    }
                };
                self.start_convert(ctx, source, dest, accept);
            }
            Command::SetParentDialog => {
                if self.doc.is_some() {
                    let picked = open_dialog("Choose the parent checkpoint", frame);
                    self.after_dialog(picked, PathPurpose::SetParent, String::new());
                }
            }
            Command::SetParent { file, parent } => self.start_set_parent(ctx, file, parent),
            Command::Cancel(kind) => {
                if let Some(status) = self.cancel(kind) {
                    self.notice = Some(format!("Cancelled: {}.", status.text()));
                    self.converted = None;
                }
            }
            Command::SetTheme(theme) => {
                self.state.theme = theme;
                apply_theme(ctx, theme);
            }
            Command::DismissError => self.error = None,
            Command::DismissNotice => {
                self.notice = None;
                self.converted = None;
            }
            Command::DismissConfirm => self.confirm = None,
        }
    }

    fn title(&self) -> String {
        let name = if let Some(c) = &self.compare {
            format!("{} ↔ {}", display_name(&c.a.path), display_name(&c.b.path))
        } else if let Some(d) = &self.doc {
            display_name(&d.ckpt.path)
        } else if let Some(p) = &self.package {
            format!("{}/", display_name(p.root()))
        } else {
            return "ckptscope".into();
        };
        format!("{name} — ckptscope")
    }

    fn menu_facts(&self) -> MenuFacts {
        MenuFacts {
            current: self.doc.as_ref().map(|d| d.ckpt.path.clone()),
            is_pickle: self.doc.as_ref().is_some_and(|d| d.ckpt.pickle.is_some()),
            is_safetensors: self
                .doc
                .as_ref()
                .is_some_and(|d| d.ckpt.format == crate::Format::Safetensors),
            can_export: self.doc.as_ref().is_some_and(|d| exportable(&d.ckpt)),
            comparing: self.compare.is_some(),
        }
    }

    fn dropped_files(&mut self, ui: &egui::Ui) {
        let dropped: Vec<PathBuf> = ui.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        let open = match (&self.doc, &self.compare) {
            (Some(doc), None) => Some(doc.ckpt.path.as_path()),
            _ => None,
        };
        if let Some(c) = dropped_command(&dropped, open) {
            self.commands.push(c);
        }
    }

    /// The recent files with whether each still exists: checked when the list changed or the
    /// start screen comes back, not every frame.
    fn refresh_recent(&mut self) {
        let same = self.recent.len() == self.state.recent.len()
            && self
                .recent
                .iter()
                .zip(&self.state.recent)
                .all(|(r, p)| &r.path == p);
        if !same || !self.start_shown {
            self.recent = check_recent(&self.state.recent);
        }
    }
}

impl eframe::App for App {
    /// Everything but drawing, before each frame (and while the window is hidden): the
    /// commands the last frame pushed are done, the jobs' results routed, the views' jobs
    /// started, the recent files checked and the title set.
    fn logic(&mut self, ctx: &egui::Context, frame: &mut eframe::Frame) {
        self.drain(ctx, Some(frame));
        self.poll_jobs(ctx);
        let start = self.compare.is_none() && self.doc.is_none() && self.package.is_none();
        if start {
            self.refresh_recent();
        }
        self.start_shown = start;
        let title = self.title();
        if self.last_title.as_deref() != Some(title.as_str()) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.last_title = Some(title);
        }
        if self.busy() {
            if self.sync {
                // Inline jobs are already done: show their results in the next frame.
                ctx.request_repaint();
            } else {
                // Progress bars move; results arrive with their own repaint.
                ctx.request_repaint_after(std::time::Duration::from_millis(100));
            }
        }
    }

    /// Draws the window from the state [`App::logic`] left; what a click asks for is pushed
    /// as a [`Command`] and done by the next frame's logic.
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let facts = self.menu_facts();
        self.focus_filter |= shortcuts(ui, &facts, &mut self.commands).focus_filter;
        self.dropped_files(ui);

        egui::Panel::top("menu").show(ui, |ui| {
            menu_ui(ui, &mut self.state, &facts, &mut self.commands);
        });
        let mut running = self.jobs.running();
        running.extend(self.open_folder.status());
        let messages = Messages {
            error: self.error.as_deref(),
            notice: self.notice.as_deref(),
            converted: self.converted.as_ref().map(|w| &w.path),
            running: &running,
        };
        if messages.any() {
            egui::Panel::top("messages").show(ui, |ui| {
                messages_ui(ui, &messages, &mut self.commands);
            });
        }
        if let Some(view) = &self.package
            && (self.doc.is_some() || self.compare.is_some())
        {
            crate::gui::folder_view::crumb_ui(ui, view, &mut self.commands);
        }
        if let Some(view) = &mut self.compare {
            compare_ui(ui, view, &mut self.state, &mut self.commands);
        } else if let Some(doc) = &mut self.doc {
            let focus = std::mem::take(&mut self.focus_filter);
            crate::gui::doc::doc_ui(ui, doc, &mut self.state, &mut self.commands, focus);
        } else if let Some(view) = &mut self.package {
            folder_ui(ui, view, &mut self.commands);
        } else {
            egui::CentralPanel::default().show(ui, |ui| {
                crate::gui::start::start_ui(
                    ui,
                    &self.recent,
                    self.jobs.open.running(),
                    &mut self.commands,
                );
            });
        }
        if let Some(confirm) = &self.confirm {
            confirm_ui(ui, confirm, &mut self.commands);
        }
        if let Some(prompt) = &mut self.prompt {
            path_prompt_ui(ui, prompt, &mut self.commands);
        }
        if !self.commands.is_empty() {
            // The next frame's logic does them, without waiting for an input event.
            ui.ctx().request_repaint();
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.state);
    }
}
