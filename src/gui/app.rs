//! The explorer window: state, the command loop, and which screen is shown.
//!
//! Views draw from the state and push [`Command`]s; the app drains them once per frame and does
//! the work that touches files or starts threads. Opening, scanning, statistics, conversion,
//! comparison and lineage all run as [`Job`]s, so the window keeps repainting whatever the
//! size of the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::format::{Checkpoint, OpenOptions, PickleOptions};
use crate::gui::compare::{CompareView, compare_ui};
use crate::gui::doc::{Doc, Tab};
use crate::gui::jobs::{Job, JobError, JobKind, Jobs, Opened};
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
}

/// The colour theme.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ThemeChoice {
    /// Follow the system.
    #[default]
    System,
    /// Dark.
    Dark,
    /// Light.
    Light,
}

/// What survives a restart (window size and panel widths are kept by eframe itself).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Persisted {
    /// Most recent first.
    pub recent: Vec<PathBuf>,
    /// Colour theme.
    pub theme: ThemeChoice,
    /// Tensors as a tree of name prefixes instead of a flat table.
    pub tree_view: bool,
    /// Histogram bins.
    pub bins: usize,
    /// Log-scaled histogram counts.
    pub log_counts: bool,
}

impl Default for Persisted {
    fn default() -> Self {
        Persisted {
            recent: Vec::new(),
            theme: ThemeChoice::System,
            tree_view: false,
            bins: 64,
            log_counts: false,
        }
    }
}

const MAX_RECENT: usize = 12;

/// Something a view asks the app to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Show the open dialog.
    OpenDialog,
    /// Open a file (or folder).
    Open(PathBuf),
    /// Open the demo checkpoint shipped in the binary.
    OpenDemo,
    /// Pick a second file to compare with the open one.
    CompareDialog,
    /// Compare two files.
    Compare(PathBuf, PathBuf),
    /// Back to the start screen.
    Close,
    /// Forget a recent file.
    ForgetRecent(PathBuf),
    /// Show a file in the system's file manager.
    Reveal(PathBuf),
    /// Re-run the pickle scan of the open file.
    Rescan,
    /// List the tensors of a suspicious or dangerous pickle (nothing is executed).
    ShowWithheldTensors,
    /// Ask where to write the safetensors export of the open pickle.
    ConvertDialog,
    /// Convert the open pickle to `out`, accepting files up to `accept`.
    Convert(PathBuf, Verdict),
    /// Record a parent for the open safetensors file (asks which file).
    SetParentDialog,
    /// Record `parent` as the parent of the open safetensors file.
    SetParent(PathBuf),
    /// Stop a running job (and only that one).
    Cancel(JobKind),
    /// Leave the compare view, back to the file explored before.
    LeaveCompare,
}

/// A question waiting for the user.
#[derive(Clone, Debug, PartialEq)]
enum Confirm {
    /// Converting a pickle judged unsafe.
    ConvertUnsafe { out: PathBuf, verdict: Verdict },
}

/// The explorer application.
pub struct App {
    /// What is persisted.
    pub state: Persisted,
    /// The open checkpoint.
    pub doc: Option<Doc>,
    /// The comparison, when one is shown.
    pub compare: Option<CompareView>,
    /// The last error, shown until dismissed.
    pub error: Option<String>,
    /// A short success message.
    pub notice: Option<String>,
    /// The long jobs (open, compare, convert, set-parent), each with its own progress and cancel.
    pub jobs: Jobs,
    commands: Vec<Command>,
    confirm: Option<Confirm>,
    converted: Option<PathBuf>,
    trust: Option<Verdict>,
    sync: bool,
    last_title: Option<String>,
    focus_filter: bool,
}

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
            error: None,
            notice: None,
            jobs: Jobs::default(),
            commands: Vec::new(),
            confirm: None,
            converted: None,
            trust: None,
            sync: args.sync_jobs,
            last_title: None,
            focus_filter: false,
        };
        apply_theme(&cc.egui_ctx, app.state.theme);
        match args.files.as_slice() {
            [] if args.demo_on_first_run && app.state.recent.is_empty() => {
                app.commands.push(Command::OpenDemo)
            }
            [] => {}
            [one] => app.commands.push(Command::Open(one.clone())),
            [a, b, ..] => app.commands.push(Command::Compare(a.clone(), b.clone())),
        }
        // Process the startup commands now, so the first frame already shows the work.
        app.drain(&cc.egui_ctx, None);
        app
    }

    /// Queues a command (tests use this in place of clicks on native dialogs).
    pub fn push(&mut self, c: Command) {
        self.commands.push(c);
    }

    fn options_for(
        trust: Option<Verdict>,
        progress: &Arc<crate::progress::Progress>,
    ) -> OpenOptions {
        OpenOptions {
            pickle: PickleOptions {
                trust,
                ..PickleOptions::default()
            },
            progress: Some(progress.clone()),
            ..OpenOptions::default()
        }
    }

    fn remember(&mut self, path: &Path) {
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        self.state.recent.retain(|p| p != &path);
        self.state.recent.insert(0, path);
        self.state.recent.truncate(MAX_RECENT);
    }

    fn start_open(&mut self, ctx: &egui::Context, path: PathBuf) {
        let trust = self.trust;
        let job = Job::spawn(
            ctx,
            JobKind::Open,
            display_name(&path),
            self.sync,
            move |progress| {
                let ckpt = crate::format::open_with(&path, &App::options_for(trust, progress))?;
                Ok(Opened { path, ckpt })
            },
        );
        Jobs::start(&mut self.jobs.open, job);
        self.error = None;
    }

    fn start_compare(&mut self, ctx: &egui::Context, a: PathBuf, b: PathBuf) {
        let sync = self.sync;
        let repaint = ctx.clone();
        let trust = self.trust;
        let label = format!("{} and {}", display_name(&a), display_name(&b));
        let job = Job::spawn(ctx, JobKind::Compare, label, sync, move |progress| {
            let app = App::options_for(trust, progress);
            let ca = crate::format::open_with(&a, &app)?;
            let cb = crate::format::open_with(&b, &app)?;
            let view = CompareView::compute(Arc::new(ca), Arc::new(cb), progress, &repaint, sync);
            if progress.is_cancelled() {
                return Err(JobError::Cancelled);
            }
            Ok(view)
        });
        Jobs::start(&mut self.jobs.compare, job);
        self.error = None;
    }

    fn start_set_parent(&mut self, ctx: &egui::Context, parent: PathBuf) {
        let Some(doc) = &self.doc else { return };
        if doc.ckpt.format != crate::Format::Safetensors {
            self.error = Some(
                "Set parent writes safetensors metadata; open a .safetensors file first.".into(),
            );
            return;
        }
        let file = doc.ckpt.path.clone();
        // Rewrites the header only; quick, but still off the UI thread.
        let job = Job::spawn(
            ctx,
            JobKind::SetParent,
            display_name(&file),
            self.sync,
            move |p| Ok(crate::lineage::set_parent(&file, &parent, p)?),
        );
        Jobs::start(&mut self.jobs.set_parent, job);
        self.notice = None;
        self.error = None;
    }

    /// Shows what a job that did not give a result means to the user; a cancel needs no words.
    fn job_failed(&mut self, e: JobError) {
        match e {
            JobError::Cancelled => {}
            e => self.error = Some(e.to_string()),
        }
    }

    fn poll_jobs(&mut self, ctx: &egui::Context) {
        if let Some(result) = crate::gui::jobs::take(&mut self.jobs.open) {
            match result {
                Ok(Opened { path, ckpt }) => {
                    self.remember(&path);
                    self.doc = Some(Doc::new(Arc::new(ckpt)));
                    self.compare = None;
                }
                Err(e) => self.job_failed(e),
            }
        }
        if let Some(result) = crate::gui::jobs::take(&mut self.jobs.compare) {
            match result {
                Ok(view) => {
                    self.remember(&view.a.path.clone());
                    self.remember(&view.b.path.clone());
                    self.compare = Some(view);
                }
                Err(e) => self.job_failed(e),
            }
        }
        if let Some(result) = crate::gui::jobs::take(&mut self.jobs.convert) {
            match result {
                Ok(report) => {
                    let mut parts = Vec::new();
                    if let Some(root) = &report.exported {
                        parts.push(format!("the `{root}` weights"));
                    }
                    if !report.aliases.is_empty() {
                        parts.push(format!("{} aliases stored once", report.aliases.len()));
                    }
                    if !report.left_out.is_empty() {
                        parts.push(format!(
                            "{} other tensors left out (listed in its metadata; the CLI's --all keeps them)",
                            report.left_out.len()
                        ));
                    }
                    if !report.skipped.is_empty() {
                        parts.push(format!(
                            "{} unreadable tensors skipped",
                            report.skipped.len()
                        ));
                    }
                    self.notice = Some(format!(
                        "Converted to {}: {} tensors, {}, verified{}.",
                        report.output.display(),
                        report.tensors,
                        crate::output::human::bytes(report.bytes),
                        parts.iter().map(|p| format!("; {p}")).collect::<String>()
                    ));
                    self.converted = Some(report.output);
                }
                Err(e) => self.job_failed(e),
            }
        }
        if let Some(result) = crate::gui::jobs::take(&mut self.jobs.set_parent) {
            match result {
                Ok(report) => {
                    let keys: Vec<String> = report
                        .keys
                        .iter()
                        .map(|(k, v)| format!("{k} = {v}"))
                        .collect();
                    self.notice = Some(format!(
                        "Parent recorded in {}: {}.",
                        display_name(&report.file),
                        keys.join(", ")
                    ));
                    self.converted = None;
                    // Reopen to show the new metadata (set_parent verified it).
                    self.start_open(ctx, report.file);
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
            || self.doc.as_ref().is_some_and(Doc::busy)
            || self.compare.as_ref().is_some_and(CompareView::busy)
    }

    /// Handles queued commands. `frame` is `None` before the first frame (no dialogs then).
    fn drain(&mut self, ctx: &egui::Context, frame: Option<&eframe::Frame>) {
        for command in std::mem::take(&mut self.commands) {
            match command {
                Command::OpenDialog => {
                    if let Some(path) = open_dialog("Open checkpoint", frame) {
                        self.start_open(ctx, path);
                    }
                }
                Command::Open(path) => {
                    self.trust = None;
                    self.start_open(ctx, path);
                }
                Command::OpenDemo => match crate::gui::demo::extract() {
                    Ok(path) => self.start_open(ctx, path),
                    Err(e) => self.error = Some(format!("cannot write the demo checkpoint: {e}")),
                },
                Command::CompareDialog => {
                    if let Some(doc) = &self.doc
                        && let Some(other) = open_dialog("Compare with…", frame)
                    {
                        let a = doc.ckpt.path.clone();
                        self.start_compare(ctx, a, other);
                    }
                }
                Command::Compare(a, b) => self.start_compare(ctx, a, b),
                Command::Close => {
                    self.doc = None;
                    self.compare = None;
                    self.notice = None;
                }
                Command::LeaveCompare => self.compare = None,
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
                        let input = doc.ckpt.path.clone();
                        let suggested = crate::convert::default_output(&input);
                        if let Some(out) = save_dialog(&suggested, frame) {
                            let verdict = doc
                                .ckpt
                                .pickle
                                .as_ref()
                                .map_or(Verdict::Safe, |p| p.read_verdict());
                            // As on the command line: a TorchScript program's weights convert
                            // without a confirmation unless its code reaches the system.
                            if verdict == Verdict::Safe {
                                self.commands.push(Command::Convert(out, Verdict::Safe));
                            } else {
                                self.confirm = Some(Confirm::ConvertUnsafe { out, verdict });
                            }
                        }
                    }
                }
                Command::Convert(out, accept) => self.start_convert(ctx, out, accept),
                Command::SetParentDialog => {
                    if self.doc.is_some()
                        && let Some(parent) = open_dialog("Choose the parent checkpoint", frame)
                    {
                        self.start_set_parent(ctx, parent);
                    }
                }
                Command::SetParent(parent) => self.start_set_parent(ctx, parent),
                Command::Cancel(kind) => {
                    if !self.jobs.cancel(kind)
                        && let Some(doc) = &mut self.doc
                    {
                        doc.cancel(kind);
                    }
                }
            }
        }
    }

    fn start_convert(&mut self, ctx: &egui::Context, out: PathBuf, accept: Verdict) {
        let Some(doc) = &self.doc else { return };
        let input = doc.ckpt.path.clone();
        let options = crate::convert::ConvertOptions {
            output: Some(out.clone()),
            // The save dialog already asked about replacing an existing file.
            force: true,
            accept: Some(accept),
            ..Default::default()
        };
        let job = Job::spawn(
            ctx,
            JobKind::Convert,
            display_name(&input),
            self.sync,
            move |progress| Ok(crate::convert::convert(&input, &options, progress)?),
        );
        Jobs::start(&mut self.jobs.convert, job);
        self.notice = None;
        self.error = None;
    }

    fn title(&self) -> String {
        let name = if let Some(c) = &self.compare {
            format!("{} ↔ {}", display_name(&c.a.path), display_name(&c.b.path))
        } else if let Some(d) = &self.doc {
            display_name(&d.ckpt.path)
        } else {
            return "ckptscope".into();
        };
        format!("{name} — ckptscope")
    }

    fn shortcuts(&mut self, ui: &egui::Ui) {
        use egui::{Key, KeyboardShortcut, Modifiers};
        const OPEN: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::O);
        const FIND: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::F);
        const CLOSE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::W);
        if ui.input_mut(|i| i.consume_shortcut(&OPEN)) {
            self.commands.push(Command::OpenDialog);
        }
        if ui.input_mut(|i| i.consume_shortcut(&FIND)) {
            self.focus_filter = true;
        }
        if ui.input_mut(|i| i.consume_shortcut(&CLOSE)) {
            self.commands.push(if self.compare.is_some() {
                Command::LeaveCompare
            } else {
                Command::Close
            });
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
        match dropped.as_slice() {
            [] => {}
            [one] => match &self.doc {
                // A second file dropped on an open one: compare them.
                Some(doc) if self.compare.is_none() => {
                    self.commands
                        .push(Command::Compare(doc.ckpt.path.clone(), one.clone()));
                }
                _ => self.commands.push(Command::Open(one.clone())),
            },
            [a, b, ..] => self.commands.push(Command::Compare(a.clone(), b.clone())),
        }
    }

    fn menu(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui
                    .add(egui::Button::new("Open…").shortcut_text("Ctrl+O"))
                    .clicked()
                {
                    self.commands.push(Command::OpenDialog);
                    ui.close();
                }
                if ui.button("Open demo checkpoint").clicked() {
                    self.commands.push(Command::OpenDemo);
                    ui.close();
                }
                ui.menu_button("Open recent", |ui| {
                    if self.state.recent.is_empty() {
                        ui.weak("no recent files");
                    }
                    for p in self.state.recent.clone() {
                        if ui.button(p.display().to_string()).clicked() {
                            self.commands.push(Command::Open(p));
                            ui.close();
                        }
                    }
                });
                ui.separator();
                let has_doc = self.doc.is_some();
                if ui
                    .add_enabled(has_doc, egui::Button::new("Compare with…"))
                    .clicked()
                {
                    self.commands.push(Command::CompareDialog);
                    ui.close();
                }
                if has_doc {
                    ui.menu_button("Compare with recent", |ui| {
                        let current = self
                            .doc
                            .as_ref()
                            .map(|d| d.ckpt.path.clone())
                            .unwrap_or_default();
                        for p in self.state.recent.clone() {
                            if p != current && ui.button(p.display().to_string()).clicked() {
                                self.commands.push(Command::Compare(current.clone(), p));
                                ui.close();
                            }
                        }
                    });
                }
                let is_pickle = self.doc.as_ref().is_some_and(|d| d.ckpt.pickle.is_some());
                if ui
                    .add_enabled(is_pickle, egui::Button::new("Convert to safetensors…"))
                    .clicked()
                {
                    self.commands.push(Command::ConvertDialog);
                    ui.close();
                }
                let is_st = self
                    .doc
                    .as_ref()
                    .is_some_and(|d| d.ckpt.format == crate::Format::Safetensors);
                if ui
                    .add_enabled(is_st, egui::Button::new("Set parent…"))
                    .clicked()
                {
                    self.commands.push(Command::SetParentDialog);
                    ui.close();
                }
                ui.separator();
                if ui
                    .add(egui::Button::new("Close").shortcut_text("Ctrl+W"))
                    .clicked()
                {
                    self.commands.push(Command::Close);
                    ui.close();
                }
                if ui.button("Quit").clicked() {
                    ui.send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                ui.checkbox(
                    &mut self.state.tree_view,
                    "Tensors as a tree of name prefixes",
                );
                ui.checkbox(&mut self.state.log_counts, "Log-scaled histogram counts");
                ui.separator();
                let before = self.state.theme;
                ui.radio_value(&mut self.state.theme, ThemeChoice::System, "System theme");
                ui.radio_value(&mut self.state.theme, ThemeChoice::Dark, "Dark theme");
                ui.radio_value(&mut self.state.theme, ThemeChoice::Light, "Light theme");
                if before != self.state.theme {
                    apply_theme(ui.ctx(), self.state.theme);
                }
            });
            ui.menu_button("Help", |ui| {
                ui.label(format!("ckptscope {}", env!("CARGO_PKG_VERSION")));
                ui.label("Ctrl+O open · Ctrl+F filter tensors · Ctrl+W close");
                ui.label("Drop a file to open it; drop a second one to compare.");
                ui.label("Nothing in a pickle file is ever executed.");
            });
        });
    }

    fn messages(&mut self, ui: &mut egui::Ui) {
        if let Some(error) = self.error.clone() {
            egui::Frame::new()
                .fill(ui.visuals().extreme_bg_color)
                .stroke(egui::Stroke::new(1.0, ui.visuals().error_fg_color))
                .inner_margin(8)
                .corner_radius(4)
                .show(ui, |ui| {
                    ui.horizontal_wrapped(|ui| {
                        ui.colored_label(
                            ui.visuals().error_fg_color,
                            egui::RichText::new("Error").strong(),
                        );
                        ui.label(&error);
                        if ui.button("Dismiss").clicked() {
                            self.error = None;
                        }
                    });
                });
        }
        if let Some(notice) = self.notice.clone() {
            ui.horizontal_wrapped(|ui| {
                ui.label(&notice);
                if let Some(out) = self.converted.clone()
                    && ui.button("Open it").clicked()
                {
                    self.commands.push(Command::Open(out));
                    self.notice = None;
                    self.converted = None;
                }
                if ui.button("Dismiss").clicked() {
                    self.notice = None;
                }
            });
        }
        for status in self.jobs.running() {
            if crate::gui::widgets::job_row(ui, &status) {
                self.commands.push(Command::Cancel(status.kind));
            }
        }
    }

    fn confirm_ui(&mut self, ui: &mut egui::Ui) {
        let Some(Confirm::ConvertUnsafe { out, verdict }) = self.confirm.clone() else {
            return;
        };
        let modal = egui::Modal::new(egui::Id::unique("confirm-convert")).show(ui.ctx(), |ui| {
            ui.set_max_width(460.0);
            ui.heading(format!("Convert a {verdict} file?"));
            ui.label(format!(
                "The scan judged this file {verdict}. Converting never executes it: only tensor bytes are copied. \
                 The output records the verdict in its metadata."
            ));
            ui.horizontal(|ui| {
                if ui.button(format!("Convert anyway to {}", display_name(&out))).clicked() {
                    self.commands.push(Command::Convert(out.clone(), verdict));
                    ui.close();
                }
                if ui.button("Cancel").clicked() {
                    ui.close();
                }
            });
        });
        if modal.should_close() {
            self.confirm = None;
        }
    }
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.poll_jobs(&ctx);
        self.shortcuts(ui);
        self.dropped_files(ui);
        let title = self.title();
        if self.last_title.as_deref() != Some(title.as_str()) {
            ui.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.last_title = Some(title);
        }

        egui::Panel::top("menu").show(ui, |ui| {
            self.menu(ui);
        });
        if self.error.is_some() || self.notice.is_some() || self.jobs.busy() {
            egui::Panel::top("messages").show(ui, |ui| self.messages(ui));
        }
        if let Some(view) = &mut self.compare {
            compare_ui(ui, view, &mut self.state, &mut self.commands);
        } else if let Some(doc) = &mut self.doc {
            let focus = std::mem::take(&mut self.focus_filter);
            crate::gui::doc::doc_ui(ui, doc, &mut self.state, &mut self.commands, focus);
        } else {
            egui::CentralPanel::default().show(ui, |ui| {
                crate::gui::start::start_ui(
                    ui,
                    &self.state,
                    self.jobs.open.is_some(),
                    &mut self.commands,
                );
            });
        }
        self.confirm_ui(ui);

        self.drain(&ctx, Some(frame));
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

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.state);
    }
}

fn apply_theme(ctx: &egui::Context, theme: ThemeChoice) {
    ctx.set_theme(match theme {
        ThemeChoice::System => egui::ThemePreference::System,
        ThemeChoice::Dark => egui::ThemePreference::Dark,
        ThemeChoice::Light => egui::ThemePreference::Light,
    });
}

/// The file name, for titles and labels.
pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

const CHECKPOINT_EXTENSIONS: [&str; 9] = [
    "safetensors",
    "json",
    "pt",
    "pth",
    "bin",
    "ckpt",
    "pkl",
    "npz",
    "gguf",
];

fn open_dialog(title: &str, frame: Option<&eframe::Frame>) -> Option<PathBuf> {
    let mut dialog = rfd::FileDialog::new()
        .set_title(title)
        .add_filter("Checkpoints", &CHECKPOINT_EXTENSIONS)
        .add_filter("All files", &["*"]);
    if let Some(frame) = frame {
        dialog = dialog.set_parent(frame);
    }
    dialog.pick_file()
}

fn save_dialog(suggested: &Path, frame: Option<&eframe::Frame>) -> Option<PathBuf> {
    let mut dialog = rfd::FileDialog::new()
        .set_title("Export to safetensors")
        .add_filter("safetensors", &["safetensors"])
        .set_file_name(display_name(suggested));
    if let Some(dir) = suggested.parent().filter(|d| !d.as_os_str().is_empty()) {
        dialog = dialog.set_directory(dir);
    }
    if let Some(frame) = frame {
        dialog = dialog.set_parent(frame);
    }
    dialog.save_file()
}

/// Opens the folder holding `path` in the system's file manager.
fn reveal(path: &Path) -> std::io::Result<()> {
    let folder = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(Path::new("."))
    };
    let mut cmd = if cfg!(target_os = "macos") {
        let mut c = std::process::Command::new("open");
        c.arg("-R").arg(path);
        c
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("explorer");
        c.arg(format!("/select,{}", path.display()));
        c
    } else {
        let mut c = std::process::Command::new("xdg-open");
        c.arg(folder);
        c
    };
    cmd.spawn().map(drop)
}

impl Doc {
    /// The tab shown first for this file.
    pub fn first_tab(ckpt: &Checkpoint) -> Tab {
        match &ckpt.pickle {
            // TorchScript whose code reaches the system: the flagged lines first.
            Some(p)
                if p.torchscript.as_ref().is_some_and(|c| {
                    c.flagged
                        .iter()
                        .any(|f| f.risk == crate::pickle::policy::Risk::Dangerous)
                }) =>
            {
                Tab::Code
            }
            // A benign TorchScript archive is suspicious only for being a program: its tensors
            // come first, its code is one tab away.
            Some(p) if ckpt.tensors.is_empty() || p.read_verdict() != Verdict::Safe => Tab::Scan,
            _ => Tab::Inspector,
        }
    }
}
