//! A model folder seen as one package: its files with role, format, size and verdict, the
//! totals, the `config.json` summary, the run timeline, and the package-wide actions (convert all
//! pickles, make the inference package, compare consecutive checkpoints).
//!
//! Owns [`FolderView`]: the package with its inference plan and the count of pickles left to
//! convert (read together on a worker, [`FolderRead`]: by the app's open job, and again by the
//! view's own job once *Convert all pickles* ends or is cancelled, so the files it wrote and the
//! totals show at once), and the slots of its jobs, whose results it keeps. The view scrolls as
//! a whole: the action results above the file table never push the table out of reach.
//! Clicking a file pushes [`Command::Open`]; a point of the run plot pushes
//! [`Command::Compare`]. Must not import: `app`, `menu`, `dialogs`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use egui::{RichText, Ui};
use egui_extras::{Column, TableBuilder};

use crate::gui::command::Command;
use crate::gui::jobs::{Ended, Job, JobError, JobKind, JobStatus, Slot};
use crate::gui::notices::convert_all_notice;
use crate::gui::widgets::{COLOR_A, display_name, job_row, verdict_color};
use crate::output::human::bytes as human_bytes;
use crate::output::package::{check_label, config_value, format_label, verdict_line};
use crate::package::convert_all::{Item, Outcome, RunProgress, Summary};
use crate::package::inference::{Plan, Written};
use crate::package::run::RunChanges;
use crate::package::{Package, PackageOptions};

/// A model folder read on a worker, with what the view computes from it once: the inference
/// plan (pure) and the pickles "Convert all" would convert (it looks at the disk).
pub struct FolderRead {
    /// The package.
    pub package: Package,
    plan: Plan,
    to_convert: usize,
}

impl FolderRead {
    /// Reads the folder `path` as a package (on the caller's worker).
    pub fn read(path: &Path, progress: &crate::progress::Progress) -> Result<FolderRead, JobError> {
        let package = crate::package::open_package(path, &PackageOptions::default(), progress)?;
        let plan = crate::package::inference::plan(&package);
        let to_convert = convertible(&package);
        Ok(FolderRead {
            package,
            plan,
            to_convert,
        })
    }
}

/// The open folder.
pub struct FolderView {
    /// The package.
    pub package: Arc<Package>,
    /// What "Make inference package" would write.
    pub plan: Plan,
    /// Where the inference package goes (a folder, or a `.tar.gz`).
    pub target: String,
    /// The inference plan is shown (before writing).
    pub show_plan: bool,
    /// The last inference package written.
    pub written: Option<Written>,
    /// The convert-all run's items so far (and, once done, its summary).
    pub items: Arc<Mutex<Vec<Item>>>,
    /// The last convert-all run, once it ended.
    pub summary: Option<Summary>,
    /// Pickles "Convert all" would convert now (their outputs are not there yet): counted when
    /// the package is read, not every frame (it looks at the disk).
    to_convert: usize,
    /// How much each layer moved between consecutive run points.
    pub changes: Option<RunChanges>,
    convert: Slot<Summary>,
    run_progress: Option<Arc<RunProgress>>,
    inference: Slot<Written>,
    compare: Slot<RunChanges>,
    /// Reading the folder again after a convert-all run.
    reread: Slot<FolderRead>,
    /// A convert-all run ended or was cancelled: the folder is read again once it stops.
    stale: bool,
}

impl FolderView {
    /// The view of a freshly opened package.
    pub fn new(read: FolderRead) -> FolderView {
        let FolderRead {
            package,
            plan,
            to_convert,
        } = read;
        let target = crate::package::inference::default_target(&package)
            .display()
            .to_string();
        FolderView {
            to_convert,
            package: Arc::new(package),
            plan,
            target,
            show_plan: false,
            written: None,
            items: Arc::default(),
            summary: None,
            changes: None,
            convert: Slot::default(),
            run_progress: None,
            inference: Slot::default(),
            compare: Slot::default(),
            reread: Slot::default(),
            stale: false,
        }
    }

    /// The job that opens `path` as a package.
    pub fn open_job(ctx: &egui::Context, path: PathBuf, sync: bool) -> Job<FolderRead> {
        Job::spawn(
            ctx,
            JobKind::OpenFolder,
            display_name(&path),
            sync,
            move |progress| FolderRead::read(&path, progress),
        )
    }

    /// Reads the folder again: what a convert-all run wrote (and the totals, the plan and the
    /// count of pickles left) is then listed. The view stays as it is meanwhile.
    fn start_reread(&mut self, ctx: &egui::Context, sync: bool) {
        let root = self.package.root.clone();
        self.reread.start(Job::spawn(
            ctx,
            JobKind::Reread,
            display_name(&root),
            sync,
            move |progress| FolderRead::read(&root, progress),
        ));
    }

    /// Shows the folder read again, once it is there: an error to show if that failed.
    fn collect_reread(&mut self) -> Option<String> {
        match self.reread.take()? {
            Ok(read) => {
                self.package = Arc::new(read.package);
                self.plan = read.plan;
                self.to_convert = read.to_convert;
                None
            }
            Err(JobError::Cancelled) => None,
            Err(e) => Some(format!("cannot read the folder again: {e}")),
        }
    }

    /// Does a package command: convert all, make the inference package, compare the run.
    pub fn handle(
        &mut self,
        ctx: &egui::Context,
        sync: bool,
        command: Command,
        options: crate::convert::ConvertOptions,
    ) {
        match command {
            Command::ConvertAll => self.start_convert_all(ctx, sync, options),
            Command::MakeInference(target) => self.start_inference(ctx, sync, target, options),
            Command::CompareRun => self.start_run_compare(ctx, sync, PackageOptions::default()),
            _ => {}
        }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.package.root
    }

    /// Starts "Convert all pickles": every weight-bearing pickle converted next to itself,
    /// existing outputs kept, one failure not stopping the rest.
    pub fn start_convert_all(
        &mut self,
        ctx: &egui::Context,
        sync: bool,
        options: crate::convert::ConvertOptions,
    ) {
        let package = self.package.clone();
        let items = self.items.clone();
        items.lock().unwrap_or_else(PoisonError::into_inner).clear();
        self.summary = None;
        let run = RunProgress::new();
        self.run_progress = Some(run.clone());
        let job = Job::spawn_with(
            ctx,
            JobKind::ConvertAll,
            display_name(&package.root),
            sync,
            run.overall.clone(),
            move |_| {
                let summary =
                    crate::package::convert_all::convert_all(&package, &options, &run, |item| {
                        items
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(item.clone());
                    });
                Ok(summary)
            },
        );
        self.convert.start(job);
    }

    /// Starts writing the inference package to `target`.
    pub fn start_inference(
        &mut self,
        ctx: &egui::Context,
        sync: bool,
        target: PathBuf,
        options: crate::convert::ConvertOptions,
    ) {
        let package = self.package.clone();
        let plan = self.plan.clone();
        let job = Job::spawn(
            ctx,
            JobKind::Inference,
            display_name(&target),
            sync,
            move |progress| {
                crate::package::inference::write(&package, &plan, &target, &options, progress)
                    .map_err(|e| match e {
                        crate::package::inference::InferenceError::Cancelled => JobError::Cancelled,
                        e => JobError::failed(e),
                    })
            },
        );
        self.written = None;
        self.inference.start(job);
    }

    /// Starts comparing each run point with the next.
    pub fn start_run_compare(&mut self, ctx: &egui::Context, sync: bool, options: PackageOptions) {
        let package = self.package.clone();
        let job = Job::spawn(
            ctx,
            JobKind::RunCompare,
            display_name(&package.root),
            sync,
            move |progress| {
                Ok(crate::package::run::run_changes(
                    &package, &options, progress,
                )?)
            },
        );
        self.changes = None;
        self.compare.start(job);
    }

    /// Collects the results of finished jobs, and reads the folder again after a convert-all
    /// run. Returns a notice to show, or an error.
    pub fn update(&mut self, ctx: &egui::Context, sync: bool) -> Option<Result<String, String>> {
        let mut said = self.collect_reread().map(Err);
        if let Some(result) = self.convert.take() {
            self.run_progress = None;
            self.stale = true;
            match result {
                Ok(summary) => {
                    said = Some(Ok(convert_all_notice(&summary)));
                    self.summary = Some(summary);
                }
                Err(JobError::Cancelled) => {}
                Err(e) => said = Some(Err(e.to_string())),
            }
        }
        if let Some(result) = self.inference.take() {
            match result {
                Ok(written) => {
                    said = Some(Ok(format!(
                        "Inference package written to {}: {} files, {}; {} left out.",
                        written.path.display(),
                        written.plan.entries.len(),
                        human_bytes(written.bytes),
                        human_bytes(written.plan.saved_bytes)
                    )));
                    self.show_plan = false;
                    self.written = Some(written);
                }
                Err(JobError::Cancelled) => {}
                Err(e) => said = Some(Err(e.to_string())),
            }
        }
        if let Some(result) = self.compare.take() {
            match result {
                Ok(changes) => self.changes = Some(changes),
                Err(JobError::Cancelled) => {}
                Err(e) => said = Some(Err(e.to_string())),
            }
        }
        if self.stale && !self.convert.running() {
            self.stale = false;
            self.start_reread(ctx, sync);
            if sync && let Some(e) = self.collect_reread() {
                said = Some(Err(e));
            }
        }
        said
    }

    /// Cancels this view's job of `kind`: its status, if one ran.
    pub fn cancel(&mut self, kind: JobKind) -> Option<JobStatus> {
        match kind {
            JobKind::ConvertAll => {
                if let Some(run) = self.run_progress.take() {
                    run.cancel();
                }
                let status = self.convert.cancel();
                // What the run wrote before it stopped is listed once the folder is read again.
                self.stale = status.is_some();
                status
            }
            JobKind::Inference => self.inference.cancel(),
            JobKind::RunCompare => self.compare.cancel(),
            JobKind::Reread => self.reread.cancel(),
            _ => None,
        }
    }

    /// How this view's last job of `kind` ended.
    pub fn ended(&self, kind: JobKind) -> Option<&Ended> {
        match kind {
            JobKind::ConvertAll => self.convert.ended(),
            JobKind::Inference => self.inference.ended(),
            JobKind::RunCompare => self.compare.ended(),
            JobKind::Reread => self.reread.ended(),
            _ => None,
        }
    }

    /// True while one of its jobs runs.
    pub fn busy(&self) -> bool {
        self.convert.running()
            || self.inference.running()
            || self.compare.running()
            || self.reread.running()
            || self.stale
    }
}

/// Pickles of `package` whose conversion would run (not skipped: their output is not there).
fn convertible(package: &Package) -> usize {
    crate::package::convert_all::plan(package, false)
        .iter()
        .filter(|(_, d)| d.is_ok())
        .count()
}

/// Draws the package.
pub fn folder_ui(ui: &mut Ui, view: &mut FolderView, commands: &mut Vec<Command>) {
    egui::Panel::top("package-header").show(ui, |ui| header_ui(ui, view, commands));
    egui::Panel::right("package-side")
        .resizable(true)
        .default_size(380.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| side_ui(ui, view, commands));
        });
    egui::CentralPanel::default().show(ui, |ui| {
        // One scroll for the whole column: the plan, the convert-all results and the run's
        // changes above the file table would otherwise push it below the window.
        egui::ScrollArea::vertical()
            .id_salt("package-central")
            .auto_shrink([false, false])
            .show(ui, |ui| central_ui(ui, view, commands));
    });
}

/// The central column: the plan, the actions' results and the files.
fn central_ui(ui: &mut Ui, view: &mut FolderView, commands: &mut Vec<Command>) {
    if view.show_plan {
        plan_ui(ui, view, commands);
        ui.separator();
    }
    let has_results =
        view.convert.running() || view.summary.is_some() || !lock(&view.items).is_empty();
    if has_results {
        egui::CollapsingHeader::new(RichText::new("Convert all pickles").strong())
            .default_open(true)
            .show(ui, |ui| summary_ui(ui, view, commands));
        ui.separator();
    }
    if let Some(changes) = &view.changes {
        egui::CollapsingHeader::new(
            RichText::new("Change between consecutive checkpoints").strong(),
        )
        .default_open(true)
        .show(ui, |ui| {
            run_changes_ui(ui, &view.package, changes, commands)
        });
        ui.separator();
    }
    files_ui(ui, view, commands);
}

/// The bar above a file opened from the package: the way back to it.
pub fn crumb_ui(ui: &mut Ui, view: &FolderView, commands: &mut Vec<Command>) {
    egui::Panel::top("package-crumb").show(ui, |ui| {
        ui.horizontal(|ui| {
            if ui
                .button(format!("Back to {}", display_name(view.root())))
                .on_hover_text("Back to the folder")
                .clicked()
            {
                commands.push(Command::BackToFolder);
            }
            ui.weak("opened from this folder");
        });
    });
}

fn lock(items: &Mutex<Vec<Item>>) -> std::sync::MutexGuard<'_, Vec<Item>> {
    items.lock().unwrap_or_else(PoisonError::into_inner)
}

fn header_ui(ui: &mut Ui, view: &mut FolderView, commands: &mut Vec<Command>) {
    let p = &view.package;
    ui.add_space(4.0);
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(display_name(&p.root)).size(18.0).strong());
        ui.label(format!(
            "{} files · {} · {} pickles ({}) · {} in safe formats",
            p.totals.files,
            human_bytes(p.totals.bytes),
            p.totals.pickle_files,
            human_bytes(p.totals.pickle_bytes),
            human_bytes(p.totals.safe_format_bytes),
        ));
        let color = p
            .totals
            .verdict()
            .map_or(ui.visuals().warn_fg_color, |v| verdict_color(v, ui));
        ui.colored_label(color, RichText::new(verdict_line(p)).strong());
    });
    ui.horizontal_wrapped(|ui| {
        let to_convert = view.to_convert;
        let convert = ui
            .add_enabled(
                !view.convert.running() && !view.reread.running() && to_convert > 0,
                egui::Button::new(format!("Convert all pickles ({to_convert})")),
            )
            .on_hover_text(
                "Convert every weight-bearing pickle (sharded models through their index) to \
                 safetensors next to it. Existing outputs are kept; training state is skipped.",
            )
            .on_disabled_hover_text("No pickle weights left to convert (or a run is going on).");
        if convert.clicked() {
            commands.push(Command::ConvertAll);
        }
        let inference = ui
            .add_enabled(
                !view.inference.running(),
                egui::Button::new("Make inference package…"),
            )
            .on_hover_text(format!(
                "Config, weights in safetensors and tokenizer only: saves {} of {}",
                human_bytes(view.plan.saved_bytes),
                human_bytes(view.plan.package_bytes)
            ));
        if inference.clicked() {
            view.show_plan = !view.show_plan;
        }
        let points = p.timeline.len();
        let compare = ui
            .add_enabled(
                points >= 2 && !view.compare.running(),
                egui::Button::new("Compare consecutive"),
            )
            .on_hover_text("How much each layer moved between consecutive run checkpoints")
            .on_disabled_hover_text("The run has fewer than two checkpoints.");
        if compare.clicked() {
            commands.push(Command::CompareRun);
        }
        if ui.button("Show in folder").clicked() {
            commands.push(Command::Reveal(p.root.clone()));
        }
    });
    for (slot_status, kind) in [
        (view.convert.status(), JobKind::ConvertAll),
        (view.inference.status(), JobKind::Inference),
        (view.compare.status(), JobKind::RunCompare),
        (view.reread.status(), JobKind::Reread),
    ] {
        let Some(status) = slot_status else { continue };
        if job_row(ui, &status) {
            commands.push(Command::Cancel(kind));
        }
        if kind == JobKind::ConvertAll
            && let Some((file, progress)) = view.run_progress.as_ref().and_then(|r| r.current())
        {
            ui.horizontal(|ui| {
                ui.add_space(24.0);
                let fraction = if progress.total() > 0 {
                    progress.done() as f32 / progress.total() as f32
                } else {
                    0.0
                };
                ui.add(
                    egui::ProgressBar::new(fraction.min(1.0))
                        .desired_width(180.0)
                        .show_percentage(),
                );
                ui.label(format!("converting {}", file.display()));
            });
        }
    }
    ui.add_space(4.0);
}

fn files_ui(ui: &mut Ui, view: &FolderView, commands: &mut Vec<Command>) {
    let p = &view.package;
    if !p.skipped.is_empty() {
        ui.collapsing(format!("{} paths not listed", p.skipped.len()), |ui| {
            for s in &p.skipped {
                ui.label(format!("{}: {}", s.path.display(), s.reason));
            }
        });
    }
    ui.scope(|ui| {
        ui.style_mut().interaction.selectable_labels = false;
        ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Truncate);
        // The table does not scroll on its own: the column it sits in does.
        TableBuilder::new(ui)
            .id_salt("package-files")
            .vscroll(false)
            .striped(true)
            .resizable(true)
            .sense(egui::Sense::click())
            .column(Column::initial(300.0).at_least(120.0).clip(true))
            .column(Column::initial(130.0).at_least(60.0).clip(true))
            .column(Column::initial(150.0).at_least(60.0).clip(true))
            .column(Column::initial(80.0).at_least(50.0))
            .column(Column::initial(100.0).at_least(50.0))
            .column(Column::remainder().at_least(80.0).clip(true))
            .header(20.0, |mut h| {
                for label in [
                    "file",
                    "role",
                    "format",
                    "size",
                    "verdict",
                    "torch.load(weights_only)",
                ] {
                    h.col(|ui| {
                        ui.strong(label);
                    });
                }
            })
            .body(|body| {
                body.rows(20.0, p.files.len(), |mut row| {
                    let Some(f) = p.files.get(row.index()) else {
                        return;
                    };
                    row.col(|ui| {
                        let name = f.path.display().to_string();
                        let opens = f.role.holds_weights() || f.format != crate::Format::Unknown;
                        if opens {
                            let link = ui
                                .link(RichText::new(&name).monospace())
                                .on_hover_text(format!("Open {name} in the explorer"));
                            if link.clicked() {
                                commands.push(Command::Open(p.absolute(&f.path)));
                            }
                        } else {
                            ui.add(egui::Label::new(RichText::new(&name).monospace()).truncate())
                                .on_hover_text(&name);
                        }
                    });
                    row.col(|ui| {
                        ui.label(f.role.label());
                    });
                    row.col(|ui| {
                        ui.label(format_label(p, f));
                    });
                    row.col(|ui| {
                        ui.monospace(human_bytes(f.bytes));
                    });
                    row.col(|ui| {
                        let text = check_label(&f.check);
                        let label = match p.verdict_of(f) {
                            Some(v) => ui.colored_label(verdict_color(v, ui), text),
                            None => ui.label(text),
                        };
                        let why = match &f.check {
                            crate::package::Check::Scanned { findings, .. } => findings
                                .first()
                                .map(|x| match &x.global {
                                    Some(g) => format!("{g}: {}", x.reason),
                                    None => x.reason.clone(),
                                })
                                .unwrap_or_default(),
                            crate::package::Check::NotScanned { reason } => reason.clone(),
                            crate::package::Check::NotCheckpoint => {
                                "Not a checkpoint: not scanned".into()
                            }
                        };
                        if !why.is_empty() {
                            label.on_hover_text(why);
                        }
                    });
                    row.col(|ui| {
                        let text = crate::output::package::weights_only_label(&f.check);
                        let text = match &f.problem {
                            Some(problem) if text.is_empty() => format!("problem: {problem}"),
                            _ => text,
                        };
                        ui.add(egui::Label::new(&text).truncate())
                            .on_hover_text(&text);
                    });
                    if row.response().double_clicked() {
                        commands.push(Command::Open(p.absolute(&f.path)));
                    }
                });
            });
    });
}

fn side_ui(ui: &mut Ui, view: &mut FolderView, commands: &mut Vec<Command>) {
    let p = view.package.clone();
    if let Some(config) = &p.config {
        ui.label(RichText::new(format!("Config ({})", config.path.display())).strong());
        if let Some(problem) = &config.problem {
            ui.colored_label(ui.visuals().warn_fg_color, problem);
        }
        egui::Grid::new("package-config")
            .num_columns(2)
            .striped(true)
            .show(ui, |ui| {
                for (k, v) in &config.entries {
                    ui.monospace(k);
                    ui.label(config_value(v));
                    ui.end_row();
                }
            });
        ui.add_space(8.0);
    }
    ui.label(RichText::new("By role").strong());
    egui::Grid::new("package-roles")
        .num_columns(3)
        .striped(true)
        .show(ui, |ui| {
            for r in &p.totals.by_role {
                ui.label(r.role.label());
                ui.label(format!("{}", r.files));
                ui.monospace(human_bytes(r.bytes));
                ui.end_row();
            }
        });
    ui.add_space(8.0);
    ui.label(RichText::new("Run timeline").strong());
    if p.timeline.is_empty() {
        ui.weak("No checkpoint-N/ folders or step=N files.");
    } else {
        egui::Grid::new("package-timeline")
            .num_columns(4)
            .striped(true)
            .show(ui, |ui| {
                ui.strong("step");
                ui.strong("epoch");
                ui.strong("loss");
                ui.strong("checkpoint");
                ui.end_row();
                for point in &p.timeline {
                    ui.monospace(point.step.to_string());
                    ui.monospace(point.epoch.map(|e| format!("{e}")).unwrap_or_default());
                    ui.monospace(point.loss.map(|l| format!("{l:.4}")).unwrap_or_default());
                    let model = crate::package::run::point_model(&p, point);
                    let link = ui.link(point.path.display().to_string());
                    if link.clicked()
                        && let Some(model) = model
                    {
                        commands.push(Command::Open(p.absolute(&model)));
                    }
                    ui.end_row();
                }
            });
    }
}

/// One colour per pair of steps (line and points alike), cycling.
const PALETTE: [egui::Color32; 6] = [
    crate::gui::widgets::COLOR_A,
    crate::gui::widgets::COLOR_B,
    crate::gui::widgets::COLOR_DIFF,
    egui::Color32::from_rgb(90, 200, 120),
    egui::Color32::from_rgb(230, 90, 110),
    egui::Color32::from_rgb(200, 200, 90),
];

/// The relative change of each layer between consecutive points, one line per pair; clicking
/// near a point (or a pair's button) opens the pair in the compare view.
fn run_changes_ui(ui: &mut Ui, p: &Package, changes: &RunChanges, commands: &mut Vec<Command>) {
    use egui_plot::{Legend, Line, Plot, PlotPoints, Points};
    ui.weak("Relative L2 change |b − a| / |a| (L2 norms) per layer; \"other\" (embeddings, norms, head) at x = −1.");
    for (path, problem) in &changes.problems {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!("{}: {problem}", path.display()),
        );
    }
    let x_of = |layer: Option<u64>| layer.map_or(-1.0, |l| l as f64);
    let response = Plot::new("run-changes")
        .height(220.0)
        .legend(Legend::default())
        .x_axis_label("layer")
        .y_axis_label("relative change")
        .include_y(0.0)
        .allow_scroll(false)
        .show(ui, |plot_ui| {
            for (i, s) in changes.steps.iter().enumerate() {
                let color = PALETTE.get(i % PALETTE.len()).copied().unwrap_or(COLOR_A);
                let name = format!("step {} to {}", s.steps.0, s.steps.1);
                let points: Vec<[f64; 2]> = s
                    .groups
                    .iter()
                    .map(|g| [x_of(g.layer), g.rel_change])
                    .collect();
                plot_ui
                    .line(Line::new(name.clone(), PlotPoints::from(points.clone())).color(color));
                plot_ui.points(
                    Points::new(name, PlotPoints::from(points))
                        .radius(3.0)
                        .color(color),
                );
            }
            plot_ui.pointer_coordinate()
        });
    if response.response.clicked()
        && let Some(at) = response.inner
    {
        // The pair whose point is nearest the click (in plot units, x weighted as layers).
        let nearest = changes
            .steps
            .iter()
            .flat_map(|s| {
                s.groups
                    .iter()
                    .map(move |g| (s, x_of(g.layer), g.rel_change))
            })
            .min_by(|x, y| {
                let d = |(_, gx, gy): &(_, f64, f64)| (gx - at.x).abs() + (gy - at.y).abs();
                d(x).total_cmp(&d(y))
            });
        if let Some((s, _, _)) = nearest {
            commands.push(Command::Compare {
                a: p.absolute(&s.a),
                b: p.absolute(&s.b),
            });
        }
    }
    for s in &changes.steps {
        ui.horizontal(|ui| {
            let most = s
                .groups
                .iter()
                .max_by(|x, y| x.rel_change.total_cmp(&y.rel_change));
            ui.label(format!("step {} to {}", s.steps.0, s.steps.1));
            if let Some(g) = most {
                ui.weak(format!(
                    "most: {} ({})",
                    g.layer.map_or("other".into(), |l| format!("layer {l}")),
                    crate::analysis::decode::format_float(g.rel_change)
                ));
            }
            if s.unpaired > 0 {
                ui.weak(format!("{} unpaired", s.unpaired));
            }
            if ui.small_button("Compare").clicked() {
                commands.push(Command::Compare {
                    a: p.absolute(&s.a),
                    b: p.absolute(&s.b),
                });
            }
        });
    }
}

fn plan_ui(ui: &mut Ui, view: &mut FolderView, commands: &mut Vec<Command>) {
    let plan = &view.plan;
    ui.label(RichText::new("Make inference package").strong());
    ui.label(format!(
        "Keeps {} files ({}), leaves out {} ({}): saves {} of {}.",
        plan.entries.len(),
        human_bytes(plan.kept_bytes),
        plan.left_out.len(),
        human_bytes(plan.saved_bytes),
        human_bytes(plan.saved_bytes),
        human_bytes(plan.package_bytes),
    ));
    if let Some(point) = &plan.from_point {
        ui.label(format!(
            "The top level has no weights: the model comes from {}.",
            point.display()
        ));
    }
    egui::CollapsingHeader::new("What goes in, and what is left out")
        .id_salt("inference-plan")
        .show(ui, |ui| {
            egui::ScrollArea::vertical()
                .max_height(200.0)
                .show(ui, |ui| {
                    for e in &plan.entries {
                        let verb = match e.action {
                            crate::package::inference::Action::Copy => "copy",
                            crate::package::inference::Action::Convert => "convert",
                        };
                        ui.monospace(format!(
                            "{verb:8} {} -> {}",
                            e.source.display(),
                            e.dest.display()
                        ));
                    }
                    for l in &plan.left_out {
                        ui.weak(format!("leave    {}: {}", l.path.display(), l.reason));
                    }
                });
        });
    ui.horizontal(|ui| {
        ui.label("Write to");
        ui.add(
            egui::TextEdit::singleline(&mut view.target)
                .desired_width(360.0)
                .hint_text("a new folder, or a .tar.gz"),
        );
        let target = PathBuf::from(view.target.trim());
        let ok = !view.target.trim().is_empty() && !view.inference.running();
        if ui
            .add_enabled(ok, egui::Button::new("Write"))
            .on_hover_text("A folder, or an archive when the name ends in .tar.gz")
            .clicked()
        {
            commands.push(Command::MakeInference(target));
        }
        if ui.button("Close").clicked() {
            view.show_plan = false;
        }
    });
    if let Some(w) = &view.written {
        ui.horizontal(|ui| {
            ui.label(format!("Written: {}", w.path.display()));
            if ui.small_button("Show in folder").clicked() {
                commands.push(Command::Reveal(w.path.clone()));
            }
        });
    }
}

fn summary_ui(ui: &mut Ui, view: &FolderView, commands: &mut Vec<Command>) {
    if let Some(summary) = &view.summary {
        ui.label(convert_all_notice(summary));
    }
    let items = lock(&view.items);
    egui::Grid::new("convert-all-items")
        .num_columns(3)
        .striped(true)
        .show(ui, |ui| {
            for item in items.iter() {
                let (text, color) = match &item.outcome {
                    Outcome::Converted { .. } => ("converted", ui.visuals().text_color()),
                    Outcome::Skipped { .. } => ("skipped", ui.visuals().weak_text_color()),
                    Outcome::Refused { .. } => ("refused", ui.visuals().warn_fg_color),
                    Outcome::Failed { .. } => ("failed", ui.visuals().error_fg_color),
                    Outcome::Cancelled => ("not reached", ui.visuals().weak_text_color()),
                };
                ui.monospace(item.input.display().to_string());
                ui.colored_label(color, text);
                match &item.outcome {
                    Outcome::Converted { .. } => {
                        let out = item.output.clone().unwrap_or_default();
                        ui.horizontal(|ui| {
                            ui.label(format!("to {}", out.display()));
                            if ui.small_button("Open").clicked() {
                                commands.push(Command::Open(view.package.absolute(&out)));
                            }
                        });
                    }
                    Outcome::Skipped { reason }
                    | Outcome::Refused { reason }
                    | Outcome::Failed { reason } => {
                        ui.add(egui::Label::new(reason.as_str()).truncate())
                            .on_hover_text(reason.as_str());
                    }
                    Outcome::Cancelled => {
                        ui.label("");
                    }
                }
                ui.end_row();
            }
        });
}
