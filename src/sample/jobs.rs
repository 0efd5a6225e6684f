//! The job files written beside the sample: the research job, a grid worker's operational
//! job and the differentially private job.

/// The job file written beside the sample.
pub const SAMPLE_JOB: &str = r#"# shequ job for the synthetic sample district (see README.md beside this file).
name = "sample district (synthetic, Yuzhong, Chongqing)"

[options]
working_crs = "auto"        # CGCS2000 3-degree Gauss-Kruger zone nearest the data
output_crs = "EPSG:4326"
parent_rule = "declared"    # declared parent codes win over location; conflicts are reported
region = "china"
area_tolerance_m2 = 1.0

# No street polygons: derive the street by dissolving communities by their street code.
[layers.streets]
derive = true

[layers.communities]
path = "communities.geojson"
id = "code"
name = "name"
parent = "street_code"

[layers.grids]
path = "grids.geojson"
id = "code"
name = "name"
parent = "community_code"

[layers.buildings]
path = "buildings.geojson"
id = "code"
name = "name"
parent = "grid_code"

[layers.households]
path = "households.csv"
encoding = "utf-8"
id = "household_id"
building = "building_code"
lon = "lon"
lat = "lat"

[layers.residents]
path = "residents.csv"
encoding = "gb18030"
id = "居民编号"
household = "户编号"
name = "姓名"                  # direct identifiers: never written unless an operational
id_number = "公民身份号码"      # run sets privacy.plain_identifiers
phone = "联系电话"
sex = "性别"
columns = ["出生日期", "人员类型", "残疾类别", "残疾等级", "是否低保", "是否失业"]

[layers.facilities]
path = "facilities.geojson"
id = "code"
name = "name"
kind = "type"
capacity = "capacity"

# Research output: aggregates only, counts below k suppressed (with complementary
# suppression), finest geometry the building. For a grid worker's named list use
# output = "operational" with grid = "<grid code>" and a secret in SHEQU_SECRET.
[privacy]
output = "research"
k = 5

# Special-needs populations per building, grid, community and street (special_needs/).
[special_needs]
reference_date = "2026-01-01"    # ages are computed at this date

[special_needs.fields]            # roster columns behind the default categories
birth_date = "出生日期"
disability_type = "残疾类别"
disability_grade = "残疾等级"
minimum_living_allowance = "是否低保"
unemployed = "是否失业"

# Service coverage (coverage/): the default rules (GB 50180-2018 life circles: 300/500/1000 m),
# in straight lines and over the walking network, 2SFCA accessibility, blind spots, and where
# three new elderly day-care centres would newly reach the most empty-nest elderly.
[coverage]
blind_spot_below = 0.5           # a grid is a blind spot below 50% covered at the standard

[coverage.network]
path = "paths.geojson"           # streets and footways; network distances as well

[coverage.siting]
rule = "elderly_daycare_empty_nest"
k = 3                            # candidates: the buildings' points

# map.html: the grids coloured by a coverage share (switchable), facilities, blind spots and
# the siting picks, in one HTML file that opens offline (also: `shequ map OUT_DIR`).
[output]
map = true
"#;

/// The sample job for the worker of one grid: an operational run whose named lists (and
/// `coverage/residents.parquet`) hold that grid's residents under keyed pseudonyms. The run
/// needs a secret in `SHEQU_SECRET`.
///
/// # Examples
/// ```
/// let text = shequ::sample::grid_worker_job("50010300100101");
/// let job = shequ::Job::from_toml_str(&text, ".")?;
/// assert_eq!(job.privacy.unwrap().grid.as_deref(), Some("50010300100101"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Panics
/// Never: the sample job it rewrites is shequ's own (a test checks it).
pub fn grid_worker_job(grid: &str) -> String {
    with_privacy(
        "the worker of one grid of the synthetic sample district",
        &format!(
            "[privacy]\noutput = \"operational\"\ngrid = \"{grid}\"\nsecret_env = \"SHEQU_SECRET\"\n"
        ),
    )
}

/// The sample job with its title's subject and its `[privacy]` section replaced.
///
/// # Panics
/// If the sample job lost its research privacy section (a test checks it has it).
fn with_privacy(subject: &str, privacy: &str) -> String {
    let research = "[privacy]\noutput = \"research\"\nk = 5\n";
    assert!(
        SAMPLE_JOB.contains(research),
        "the sample job's privacy section"
    );
    SAMPLE_JOB
        .replace(
            "# shequ job for the synthetic sample district",
            &format!("# shequ job for {subject}"),
        )
        .replace(research, privacy)
}

/// The sample job as a differentially private release (`output = "research-dp"`, ρ = 1, the
/// noise key in `SHEQU_SECRET`).
///
/// # Examples
/// ```
/// let job = shequ::Job::from_toml_str(&shequ::sample::dp_job(), ".")?;
/// let p = job.privacy.unwrap();
/// assert_eq!(p.output, shequ::privacy::OutputKind::ResearchDp);
/// assert_eq!(p.dp.unwrap().rho, Some(1.0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Panics
/// Never: the sample job it rewrites is shequ's own (a test checks it).
pub fn dp_job() -> String {
    with_privacy(
        "a differentially private release of the synthetic sample district",
        "[privacy]\noutput = \"research-dp\"\nsecret_env = \"SHEQU_SECRET\"    # the noise key: \
         the same key and release label give the same release\n\n[privacy.dp]\n\
         mechanism = \"gaussian\"         # discrete Gaussian, zero-concentrated DP\n\
         rho = 1.0                      # the budget, split over levels and tables\n\
         release = \"sample-1\"\n",
    )
    .replace(
        "# Research output: aggregates only, counts below k suppressed (with complementary\n\
         # suppression), finest geometry the building. For a grid worker's named list use\n\
         # output = \"operational\" with grid = \"<grid code>\" and a secret in SHEQU_SECRET.\n",
        "# A differentially private release: every count of every level with noise, adding \
         up\n# across levels; the budget and its split are in manifest.json (docs/privacy.md).\n",
    )
}
