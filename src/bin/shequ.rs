//! The `shequ` command line: run a job, validate layers, generate the sample district.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use shequ::{Job, Progress, sample};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "shequ",
    version,
    about = "Community data hub: street → community → grid → building → household"
)]
struct Cli {
    /// Hide progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the model from a job file and write every output under --out.
    Run {
        /// The job file (TOML).
        job: PathBuf,
        /// Output directory.
        #[arg(long, short)]
        out: PathBuf,
        /// Roster rows read at a time (a number or `all`), overriding the job's
        /// `options.chunk_rows`; results do not depend on it, peak memory does.
        #[arg(long)]
        chunk_rows: Option<shequ::io::chunks::ChunkRows>,
    },
    /// Write the merged resident registry of an operational job's scope: every resident with
    /// its labels and their sources (roster, registers), under keyed pseudonyms; with
    /// --previous, the change report against last month's registry.
    Registry {
        /// The job file (TOML), an operational run.
        job: PathBuf,
        /// Output directory (registry.parquet, changes.parquet).
        #[arg(long, short)]
        out: PathBuf,
        /// The previous registry.parquet (written with the same pseudonym key).
        #[arg(long)]
        previous: Option<PathBuf>,
    },
    /// Build the model and print the data-quality report; writes nothing unless --out is given.
    Validate {
        /// The job file (TOML).
        job: PathBuf,
        /// Also write quality.parquet here.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// How many issues to list (all are counted).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Transform coordinates read from standard input ("x y" or "x,y" per line, x = longitude
    /// or easting) and print them, like PROJ's cs2cs but always x first. Accepts EPSG codes,
    /// PROJ strings, WKT, PROJJSON and the pseudo-CRSs gcj02 and bd09.
    Transform {
        /// Source CRS.
        #[arg(long)]
        from: String,
        /// Target CRS.
        #[arg(long)]
        to: String,
    },
    /// Write a self-contained HTML map (map.html) of a run's output directory: grids as a
    /// choropleth of one indicator, facilities, blind spots and siting picks. Opens offline.
    Map {
        /// The output directory of `shequ run`.
        out_dir: PathBuf,
        /// The grid indicator to colour by (a numeric grid column); default: the first
        /// coverage share at its standard distance, else residents_per_km2.
        #[arg(long, short)]
        indicator: Option<String>,
        /// Where to write the HTML (default: OUT_DIR/map.html).
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Generate the deterministic synthetic sample district.
    Sample {
        /// Output directory.
        #[arg(long, short)]
        out: PathBuf,
        /// Number of households.
        #[arg(long, default_value_t = 4000)]
        households: usize,
        /// Seed of the generator.
        #[arg(long, default_value_t = 2024)]
        seed: u64,
        /// Number of streets (the communities are dealt to them in contiguous runs).
        #[arg(long, default_value_t = 1)]
        streets: usize,
        /// Number of communities.
        #[arg(long, default_value_t = 7)]
        communities: usize,
        /// Grids per community.
        #[arg(long, default_value_t = 4)]
        grids_per_community: usize,
        /// Extra vertices per boundary edge (30 gives 100+ vertex boundaries).
        #[arg(long, default_value_t = 6)]
        edge_detail: usize,
        /// Do not plant data-quality problems.
        #[arg(long)]
        clean: bool,
    },
}

/// Progress bars on standard error (hidden when it is not a terminal or with --quiet).
struct Bars {
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for Bars {
    fn start(&self, step: &str, total: u64) {
        if self.quiet {
            return;
        }
        let bar = if total == 0 {
            let b = ProgressBar::new_spinner();
            b.enable_steady_tick(Duration::from_millis(120));
            b
        } else {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template("{msg:24} [{bar:40}] {pos}/{len} ({eta})")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b
        };
        bar.set_message(step.to_owned());
        if let Some(old) = self.bar.lock().expect("not poisoned").replace(bar) {
            old.finish_and_clear();
        }
    }
    fn inc(&self, n: u64) {
        if let Some(b) = self.bar.lock().expect("not poisoned").as_ref() {
            b.inc(n);
        }
    }
    fn finish(&self) {
        if let Some(b) = self.bar.lock().expect("not poisoned").take() {
            b.finish_and_clear();
        }
    }
}

fn main() -> ExitCode {
    shequ::process::avoid_transparent_huge_pages();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let shown = e.to_string();
            eprintln!("error: {shown}");
            // shequ's own messages include their cause; other libraries' causes are shown as
            // shequ shows them (first line, no debug structs).
            let mut source = std::error::Error::source(&*e);
            while let Some(s) = source {
                let cause = shequ::error::plain(&s.to_string());
                if !shown.contains(&cause) {
                    eprintln!("  caused by: {cause}");
                }
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let bars = Bars {
        quiet: cli.quiet,
        bar: Mutex::new(None),
    };
    match cli.command {
        Command::Run {
            job,
            out,
            chunk_rows,
        } => {
            let mut job = Job::from_toml(&job)?;
            if let Some(c) = chunk_rows {
                job.options.chunk_rows = c;
            }
            let (_, summary) = shequ::run::run(&job, &out, &bars)?;
            bars.finish();
            emit(&format!("{summary}output: {}\n", out.display()))?;
        }
        Command::Registry { job, out, previous } => {
            let job = Job::from_toml(&job)?;
            let s = shequ::run::write_registry(&job, &out, previous.as_deref(), &bars)?;
            bars.finish();
            let mut text = format!("registry: {} residents\n", s.residents);
            for (id, n) in &s.labelled {
                text.push_str(&format!("  {id}: {n}\n"));
            }
            for (kind, n) in s.changes.iter().flatten() {
                text.push_str(&format!("  change {kind}: {n}\n"));
            }
            emit(&format!("{text}output: {}\n", out.display()))?;
        }
        Command::Validate { job, out, limit } => {
            let job = Job::from_toml(&job)?;
            let (build, summary) = shequ::run::validate(&job, &bars)?;
            bars.finish();
            print!("{summary}");
            let issues = build.report.issues();
            for i in issues.iter().take(limit) {
                println!("  {i}");
            }
            if issues.len() > limit {
                println!(
                    "  … and {} more (use --limit or --out)",
                    issues.len() - limit
                );
            }
            if let Some(out) = out {
                std::fs::create_dir_all(&out)?;
                let kind = job
                    .privacy
                    .as_ref()
                    .map_or(shequ::privacy::OutputKind::Research, |p| p.output);
                shequ::output::write_quality(&build.report, &out.join("quality.parquet"), kind)?;
                println!("wrote {}", out.join("quality.parquet").display());
            }
        }
        Command::Map {
            out_dir,
            indicator,
            to,
        } => {
            let path =
                shequ::output::map::write_map(&out_dir, indicator.as_deref(), to.as_deref())?;
            emit(&format!("wrote {}\n", path.display()))?;
        }
        Command::Transform { from, to } => {
            use std::io::BufRead;
            let t =
                shequ::crs::Transformer::new(&shequ::Crs::parse(&from)?, &shequ::Crs::parse(&to)?)?;
            let mut pts = Vec::new();
            for (n, line) in std::io::stdin().lock().lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                let v: Vec<f64> = line
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|s| !s.is_empty())
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("line {}: {e}: {line:?}", n + 1))?;
                if v.len() != 2 {
                    return Err(
                        format!("line {}: expected two numbers, found {}", n + 1, v.len()).into(),
                    );
                }
                pts.push(geo::Coord { x: v[0], y: v[1] });
            }
            t.transform_coords(&mut pts)?;
            let text: String = pts.iter().map(|c| format!("{} {}\n", c.x, c.y)).collect();
            emit(&text)?;
        }
        Command::Sample {
            out,
            households,
            seed,
            streets,
            communities,
            grids_per_community,
            edge_detail,
            clean,
        } => {
            let cfg = sample::SampleConfig {
                seed,
                households,
                streets,
                communities,
                grids_per_community,
                edge_detail,
                plant_problems: !clean,
            };
            bars.start("generating sample", 0);
            let c = sample::write_sample(&out, &cfg)?;
            bars.finish();
            emit(&format!(
                "wrote {}: {} communities, {} grids, {} buildings, {} households, {} residents, {} facilities\n",
                out.display(),
                c.communities,
                c.grids,
                c.buildings,
                c.households,
                c.residents,
                c.facilities
            ))?;
        }
    }
    Ok(())
}

/// Writes to standard output; a closed pipe (`shequ ... | head`) is not an error.
fn emit(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
